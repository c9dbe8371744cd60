// Copyright: (c) 2026, pki.est developers
// GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
//
// The Windows side of EstWin.cs: the certificate store (X509Store), keys in CNG key storage
// providers (software or TPM) and the event log. Needs .NET Framework 4.7.2 (CopyWithPrivateKey).
// Off Windows (the tests, on Mono) the store runs for certificates without keys -- Mono's store
// keeps no private keys -- and the key and event log code compiles against Mono's assemblies
// (CngKey, RSACng, CopyWithPrivateKey are there) but needs Windows' providers to run.
//AssemblyReference -Name System.Diagnostics.EventLog.dll -CLR Core

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ansible_collections.pki.est.plugins.module_utils.EstWin;

namespace ansible_collections.pki.est.plugins.module_utils.EstWinPlatform
{
    /// <summary>A store of the Windows certificate store, LocalMachine or CurrentUser, by name (My, Root, ...).</summary>
    public sealed class X509StoreCertificateStore : ICertificateStore
    {
        private readonly StoreLocation location;
        private readonly string storeName;

        public X509StoreCertificateStore(StoreLocation location, string storeName)
        {
            this.location = location;
            this.storeName = storeName;
        }

        /// <summary>"LocalMachine" or "CurrentUser" (any case).</summary>
        public static StoreLocation ParseLocation(string name)
        {
            if (String.Equals(name, "CurrentUser", StringComparison.OrdinalIgnoreCase))
                return StoreLocation.CurrentUser;
            if (String.Equals(name, "LocalMachine", StringComparison.OrdinalIgnoreCase))
                return StoreLocation.LocalMachine;
            throw new EstException(EstErrorKind.InvalidInput, "store location must be LocalMachine or CurrentUser, got " + name);
        }

        private X509Store Open(OpenFlags flags)
        {
            X509Store store = new X509Store(storeName, location);
            try
            {
                store.Open(flags);
            }
            catch (CryptographicException e)
            {
                throw new EstException(EstErrorKind.HostState, String.Format("cannot open the certificate store {0}\\{1}: {2}", location, storeName, e.Message), 0, null, e);
            }
            return store;
        }

        public List<StoredCertificate> Certificates()
        {
            List<StoredCertificate> result = new List<StoredCertificate>();
            using (X509Store store = Open(OpenFlags.ReadOnly | OpenFlags.OpenExistingOnly))
            {
                foreach (X509Certificate2 cert in store.Certificates)
                {
                    try
                    {
                        result.Add(Describe(cert));
                    }
                    catch (FormatException)
                    {
                        // A certificate this reader cannot parse is not one EST issued to us.
                    }
                }
            }
            return result;
        }

        /// <summary>Every certificate the selector names: its SHA-1 thumbprint, or exactly its subject.</summary>
        public List<StoredCertificate> FindAll(string thumbprintOrSubject)
        {
            return Certificates().Where(c => c.Facts.Matches(thumbprintOrSubject)).ToList();
        }

        /// <summary>The current certificate of a selector (StoredCertificate.Select), or null.</summary>
        public StoredCertificate Find(string thumbprintOrSubject, string friendlyName)
        {
            return StoredCertificate.Select(Certificates(), thumbprintOrSubject, friendlyName);
        }

        public bool Contains(string thumbprint)
        {
            using (X509Store store = Open(OpenFlags.ReadOnly | OpenFlags.OpenExistingOnly))
                return store.Certificates.Find(X509FindType.FindByThumbprint, Normalized(thumbprint), false).Count > 0;
        }

        /// <summary>
        /// A certificate with what can be learnt about its private key: the provider and key name
        /// (CNG key storage provider, or the CSP of an older key). Opening the key may be denied to
        /// the caller: then the provider is unknown (null) but HasPrivateKey still says there is one.
        /// </summary>
        public static StoredCertificate Describe(X509Certificate2 cert)
        {
            string provider = null;
            string keyName = null;
            if (cert.HasPrivateKey)
            {
                try
                {
                    using (AsymmetricAlgorithm key = PrivateKeyOf(cert))
                        KeyLocation(key, out provider, out keyName);
                }
                catch (CryptographicException)
                {
                    // Not allowed to open it: the provider stays unknown.
                }
            }
            return new StoredCertificate(cert, cert.FriendlyName, cert.HasPrivateKey, provider, keyName);
        }

        private static AsymmetricAlgorithm PrivateKeyOf(X509Certificate2 cert)
        {
            AsymmetricAlgorithm rsa = RSACertificateExtensions.GetRSAPrivateKey(cert);
            return rsa ?? ECDsaCertificateExtensions.GetECDsaPrivateKey(cert);
        }

        private static void KeyLocation(AsymmetricAlgorithm key, out string provider, out string keyName)
        {
            CngKey cng = CngKeyFactory.CngKeyOf(key);
            RSACryptoServiceProvider csp = key as RSACryptoServiceProvider;
            provider = cng != null ? cng.Provider.Provider : csp != null ? csp.CspKeyContainerInfo.ProviderName : null;
            keyName = cng != null ? cng.KeyName : csp != null ? csp.CspKeyContainerInfo.KeyContainerName : null;
        }

        /// <summary>
        /// Adds the issued certificate bound to key (CopyWithPrivateKey keeps the link to a persisted
        /// key by provider and name, so the store entry finds its key later). Refuses a certificate for
        /// another key: a certificate and key that do not match are never installed.
        /// </summary>
        public string Install(byte[] issuedDer, KeyHandle key, string friendlyName)
        {
            if (!key.Matches(issuedDer))
                throw new EstException(EstErrorKind.KeyConflict, "the certificate is not for the key " + (key.Name ?? "given"));
            X509Certificate2 cert = new X509Certificate2(issuedDer);
            X509Certificate2 withKey = BindKey(cert, key.Key);
            if (!String.IsNullOrEmpty(friendlyName))
                withKey.FriendlyName = friendlyName;
            using (X509Store store = Open(OpenFlags.ReadWrite))
                store.Add(withKey);
            return withKey.Thumbprint;
        }

        private static X509Certificate2 BindKey(X509Certificate2 cert, AsymmetricAlgorithm key)
        {
            RSA rsa = key as RSA;
            if (rsa != null)
                return RSACertificateExtensions.CopyWithPrivateKey(cert, rsa);
            ECDsa ecdsa = key as ECDsa;
            if (ecdsa != null)
                return ECDsaCertificateExtensions.CopyWithPrivateKey(cert, ecdsa);
            throw new EstException(EstErrorKind.KeyStore, "cannot bind a certificate to a key of type " + key.GetType().Name);
        }

        /// <summary>Adds a certificate as it is (a CA certificate, say); false when the store has it already.</summary>
        public bool Import(X509Certificate2 cert)
        {
            using (X509Store store = Open(OpenFlags.ReadWrite))
            {
                if (store.Certificates.Find(X509FindType.FindByThumbprint, cert.Thumbprint, false).Count > 0)
                    return false;
                store.Add(cert);
            }
            return true;
        }

        /// <summary>Removes the certificate (nothing when it is not there); deleteKey deletes its persisted private key too.</summary>
        public void Remove(string thumbprint, bool deleteKey)
        {
            using (X509Store store = Open(OpenFlags.ReadWrite))
            {
                foreach (X509Certificate2 cert in store.Certificates.Find(X509FindType.FindByThumbprint, Normalized(thumbprint), false))
                {
                    AsymmetricAlgorithm key = deleteKey && cert.HasPrivateKey ? PrivateKeyOf(cert) : null;
                    store.Remove(cert);
                    if (key != null)
                        CngKeyFactory.DeletePersisted(key);
                }
            }
        }

        private static string Normalized(string thumbprint)
        {
            string value = CertFacts.NormalizeThumbprint(thumbprint);
            if (value == null || value.Length != 40)
                throw new EstException(EstErrorKind.InvalidInput, "not a SHA-1 thumbprint: " + thumbprint);
            return value;
        }
    }

    /// <summary>
    /// Persisted, non-exportable keys in a CNG key storage provider: "Microsoft Software Key
    /// Storage Provider", or "Microsoft Platform Crypto Provider" for keys that live in the TPM.
    /// Machine keys (MachineKey flag) for the LocalMachine store, user keys for CurrentUser.
    /// </summary>
    public sealed class CngKeyFactory : IKeyFactory
    {
        private readonly CngProvider provider;
        private readonly bool machineKey;

        public CngKeyFactory(string providerName, bool machineKey)
        {
            provider = new CngProvider(String.IsNullOrEmpty(providerName) ? RenewalConfig.SoftwareProvider : providerName);
            this.machineKey = machineKey;
        }

        private CngKeyOpenOptions OpenOptions
        {
            get { return machineKey ? CngKeyOpenOptions.MachineKey : CngKeyOpenOptions.None; }
        }

        public bool Exists(string name)
        {
            return CngKey.Exists(name, provider, OpenOptions);
        }

        /// <summary>The persisted key called name, or null when the provider has none.</summary>
        public KeyHandle OpenKey(string name)
        {
            if (!Exists(name))
                return null;
            return new KeyHandle(name, Wrap(CngKey.Open(name, provider, OpenOptions)), false);
        }

        public KeyHandle CreatePendingKey(string name, string keyType)
        {
            KeyHandle existing = OpenKey(name);
            if (existing != null)
            {
                string actual = KeyTypeOf(CngKeyOf(existing.Key));
                if (actual != keyType)
                    throw new EstException(EstErrorKind.KeyConflict, String.Format("the key {0} in {1} is {2}, not {3}: delete it or choose another name",
                        name, provider.Provider, actual, keyType));
                return existing;
            }
            CngKeyCreationParameters parameters = new CngKeyCreationParameters();
            parameters.Provider = provider;
            parameters.ExportPolicy = CngExportPolicies.None;
            parameters.KeyCreationOptions = machineKey ? CngKeyCreationOptions.MachineKey : CngKeyCreationOptions.None;
            CngAlgorithm algorithm;
            switch (keyType)
            {
                case "rsa-2048":
                case "rsa-3072":
                case "rsa-4096":
                    algorithm = CngAlgorithm.Rsa;
                    // Decryption too: TLS 1.2 servers with RSA key exchange decrypt with the key.
                    parameters.KeyUsage = CngKeyUsages.Signing | CngKeyUsages.Decryption;
                    parameters.Parameters.Add(new CngProperty("Length", BitConverter.GetBytes(Int32.Parse(keyType.Substring(4))), CngPropertyOptions.None));
                    break;
                case "ec-p256":
                    algorithm = CngAlgorithm.ECDsaP256;
                    parameters.KeyUsage = CngKeyUsages.Signing;
                    break;
                case "ec-p384":
                    algorithm = CngAlgorithm.ECDsaP384;
                    parameters.KeyUsage = CngKeyUsages.Signing;
                    break;
                case "ec-p521":
                    algorithm = CngAlgorithm.ECDsaP521;
                    parameters.KeyUsage = CngKeyUsages.Signing;
                    break;
                default:
                    throw new EstException(EstErrorKind.InvalidInput, "key type must be rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384 or ec-p521, got " + keyType);
            }
            try
            {
                return new KeyHandle(name, Wrap(CngKey.Create(algorithm, name, parameters)), true);
            }
            catch (CryptographicException e)
            {
                throw new EstException(EstErrorKind.KeyStore, String.Format("{0} could not create the {1} key {2}: {3}",
                    provider.Provider, keyType, name, e.Message), 0, null, e);
            }
        }

        public KeyHandle UseExistingKey(StoredCertificate certificate)
        {
            AsymmetricAlgorithm key;
            try
            {
                key = (AsymmetricAlgorithm)RSACertificateExtensions.GetRSAPrivateKey(certificate.Certificate)
                    ?? ECDsaCertificateExtensions.GetECDsaPrivateKey(certificate.Certificate);
            }
            catch (CryptographicException e)
            {
                throw new EstException(EstErrorKind.KeyStore, "the private key of " + certificate.Facts.Subject + " cannot be opened: " + e.Message, 0, null, e);
            }
            if (key == null)
                throw new EstException(EstErrorKind.KeyStore, "the certificate " + certificate.Facts.Subject + " has no RSA or ECDSA private key this client can use");
            return new KeyHandle(certificate.KeyName, key, false);
        }

        /// <summary>Deletes the persisted key called name (a pending key that will not be used); false when there was none.</summary>
        public bool DeleteKey(string name)
        {
            if (!Exists(name))
                return false;
            using (CngKey key = CngKey.Open(name, provider, OpenOptions))
                key.Delete();
            return true;
        }

        private static AsymmetricAlgorithm Wrap(CngKey key)
        {
            if (key.AlgorithmGroup == CngAlgorithmGroup.Rsa)
                return new RSACng(key);
            if (key.AlgorithmGroup == CngAlgorithmGroup.ECDsa)
                return new ECDsaCng(key);
            string group = key.AlgorithmGroup.AlgorithmGroup;
            key.Dispose();
            throw new EstException(EstErrorKind.KeyConflict, "the key is of algorithm group " + group + ", neither RSA nor ECDSA");
        }

        internal static CngKey CngKeyOf(AsymmetricAlgorithm key)
        {
            RSACng rsa = key as RSACng;
            if (rsa != null)
                return rsa.Key;
            ECDsaCng ecdsa = key as ECDsaCng;
            return ecdsa != null ? ecdsa.Key : null;
        }

        private static string KeyTypeOf(CngKey key)
        {
            if (key.AlgorithmGroup == CngAlgorithmGroup.Rsa)
                return "rsa-" + key.KeySize;
            return "ec-p" + key.KeySize;
        }

        /// <summary>Deletes a persisted key: a CNG key, or the container of an older CSP key.</summary>
        internal static void DeletePersisted(AsymmetricAlgorithm key)
        {
            CngKey cng = CngKeyOf(key);
            if (cng != null)
            {
                cng.Delete();
                return;
            }
            RSACryptoServiceProvider csp = key as RSACryptoServiceProvider;
            if (csp != null)
            {
                csp.PersistKeyInCsp = false;
                csp.Clear();
            }
        }
    }

    /// <summary>
    /// The Application event log, source "pki.est". Registering the source needs an administrator
    /// (the scheduled task runs as SYSTEM); without it, entries go under the source "Application".
    /// </summary>
    public sealed class EventLogRenewalLog : IRenewalLog
    {
        public const string SourceName = "pki.est";

        private readonly string source;

        public EventLogRenewalLog()
        {
            try
            {
                if (!EventLog.SourceExists(SourceName))
                    EventLog.CreateEventSource(SourceName, "Application");
                source = SourceName;
            }
            catch (SecurityException)
            {
                source = "Application";
            }
            catch (InvalidOperationException)
            {
                source = "Application";
            }
        }

        public void Info(int eventId, string message)
        {
            EventLog.WriteEntry(source, message, EventLogEntryType.Information, eventId);
        }

        public void Warning(int eventId, string message)
        {
            EventLog.WriteEntry(source, message, EventLogEntryType.Warning, eventId);
        }

        public void Error(int eventId, string message)
        {
            EventLog.WriteEntry(source, message, EventLogEntryType.Error, eventId);
        }
    }
}
