// Copyright: (c) 2026, pki.est developers
// GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
//
// PkiEstRenew.exe: the renewal client the Windows scheduled task runs. All logic is in
// plugins/module_utils/EstWin.cs (RenewalRunner) and EstWinPlatform.cs (store, CNG keys, event
// log); this file only reads the command line and wires them together.
//
//   PkiEstRenew.exe [--config PATH] [--check] [--force]
//
//   --config PATH  the JSON config (format: RenewalConfig in EstWin.cs);
//                  default %ProgramData%\pki.est\renewal.json
//   --check        decide and log, change nothing, send nothing
//   --force        renew now even outside the renewal window
//
// Exit codes: 0 nothing to do or renewed, 1 failed (nothing changed; or expired/missing: run the
// playbook), 2 config or command line unusable, 3 the request is pending at the server.
// Each decision is one line on stdout (failures on stderr) and one entry in the Application
// event log, source pki.est (event ids: RenewalEvents in EstWin.cs).
//
// Built on the host from the three files with the C# compiler of .NET Framework 4.x (C# 5):
//
//   & "$env:WINDIR\Microsoft.NET\Framework64\v4.0.30319\csc.exe" /nologo /optimize /target:exe `
//       /out:PkiEstRenew.exe /r:System.Core.dll `
//       PkiEstRenew.cs EstWin.cs EstWinPlatform.cs
//
// or from Windows PowerShell 5.1:
//
//   Add-Type -Path PkiEstRenew.cs, EstWin.cs, EstWinPlatform.cs -OutputType ConsoleApplication `
//       -OutputAssembly PkiEstRenew.exe -ReferencedAssemblies System.Core.dll
//
// tests/integration/test_windows_csharp.py compiles the same files with Mono's mcs -langversion:5.

using System;
using System.IO;
using System.Security.Cryptography.X509Certificates;
using ansible_collections.pki.est.plugins.module_utils.EstWin;
using ansible_collections.pki.est.plugins.module_utils.EstWinPlatform;

namespace PkiEst
{
    public static class PkiEstRenew
    {
        public static int Main(string[] args)
        {
            string configPath = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.CommonApplicationData), "pki.est", "renewal.json");
            bool check = false;
            bool force = false;
            for (int i = 0; i < args.Length; i++)
            {
                if (args[i] == "--config" && i + 1 < args.Length)
                    configPath = args[++i];
                else if (args[i] == "--check")
                    check = true;
                else if (args[i] == "--force")
                    force = true;
                else
                    return Usage("unknown argument " + args[i]);
            }

            IRenewalLog log = new BothLogs(new ConsoleLog(), new EventLogRenewalLog());
            RenewalConfig config;
            try
            {
                config = RenewalConfig.Load(configPath);
            }
            catch (EstException e)
            {
                log.Error(RenewalEvents.ConfigError, e.Message);
                return RenewalRunner.ExitConfig;
            }
            StoreLocation location = X509StoreCertificateStore.ParseLocation(config.StoreLocation);
            RenewalRunner runner = new RenewalRunner(config,
                new X509StoreCertificateStore(location, config.StoreName),
                new CngKeyFactory(config.KeyProvider, location == StoreLocation.LocalMachine),
                log);
            return runner.Run(check, force);
        }

        private static int Usage(string problem)
        {
            Console.Error.WriteLine(problem);
            Console.Error.WriteLine("usage: PkiEstRenew.exe [--config PATH] [--check] [--force]");
            return RenewalRunner.ExitConfig;
        }

        /// <summary>One line per entry: stdout for information, stderr for warnings and errors.</summary>
        private sealed class ConsoleLog : IRenewalLog
        {
            public void Info(int eventId, string message)
            {
                Console.Out.WriteLine(message);
            }

            public void Warning(int eventId, string message)
            {
                Console.Error.WriteLine("warning: " + message);
            }

            public void Error(int eventId, string message)
            {
                Console.Error.WriteLine("error: " + message);
            }
        }

        /// <summary>The console and the event log; a failing event log costs its entries, never the run.</summary>
        private sealed class BothLogs : IRenewalLog
        {
            private readonly IRenewalLog console;
            private readonly IRenewalLog eventLog;

            public BothLogs(IRenewalLog console, IRenewalLog eventLog)
            {
                this.console = console;
                this.eventLog = eventLog;
            }

            public void Info(int eventId, string message)
            {
                console.Info(eventId, message);
                Try(delegate { eventLog.Info(eventId, message); });
            }

            public void Warning(int eventId, string message)
            {
                console.Warning(eventId, message);
                Try(delegate { eventLog.Warning(eventId, message); });
            }

            public void Error(int eventId, string message)
            {
                console.Error(eventId, message);
                Try(delegate { eventLog.Error(eventId, message); });
            }

            private void Try(Action write)
            {
                try
                {
                    write();
                }
                catch (Exception e)
                {
                    console.Warning(0, "could not write to the event log: " + e.Message);
                }
            }
        }
    }
}
