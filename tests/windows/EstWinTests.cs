// Copyright: (c) 2026, pki.est developers
// GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
//
// Tests of EstWin.cs, compiled with it (and EstWinPlatform.cs, PkiEstRenew.cs) by Mono's
// mcs -langversion:5 and driven by tests/integration/test_windows_csharp.py. No test framework:
// methods marked [Test] (pure, no server) or [Lab("scenario")] (against the lab EST server the
// pytest wrapper starts) are found by reflection; each prints "ok NAME" or "FAIL NAME: reason",
// and the exit status is 1 when one failed.
//
//   EstWinTests.exe pure
//   EstWinTests.exe lab SCENARIO [ARGUMENT...]
//
// Inputs come from the environment: PKI_EST_OUT (a directory for files the wrapper checks with
// Python's cryptography, and vectors.json it wrote), PKI_EST_FIXTURES (tests/unit/fixtures),
// and for lab scenarios PKI_EST_LAB_URL, PKI_EST_LAB_CA, PKI_EST_LAB_USER, PKI_EST_LAB_PASSWORD,
// PKI_EST_OTHER_CA, PKI_EST_WRONG_NAME_URL, PKI_EST_SILENT_URL.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using ansible_collections.pki.est.plugins.module_utils.EstWin;
using ansible_collections.pki.est.plugins.module_utils.EstWinPlatform;

namespace PkiEst.Tests
{
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class TestAttribute : Attribute
    {
    }

    [AttributeUsage(AttributeTargets.Method)]
    public sealed class LabAttribute : Attribute
    {
        public LabAttribute(string scenario)
        {
            Scenario = scenario;
        }

        public string Scenario { get; private set; }
    }

    public sealed class CheckFailed : Exception
    {
        public CheckFailed(string message) : base(message) { }
    }

    public static class Check
    {
        public static void True(bool condition, string what)
        {
            if (!condition)
                throw new CheckFailed(what);
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new CheckFailed(String.Format("{0}: expected <{1}>, got <{2}>", what, expected, actual));
        }

        public static void Bytes(byte[] expected, byte[] actual, string what)
        {
            if (!Der.BytesEqual(expected, actual))
                throw new CheckFailed(String.Format("{0}: expected {1}, got {2}", what, Der.Hex(expected), actual == null ? "null" : Der.Hex(actual)));
        }

        public static void Contains(string text, string part, string what)
        {
            if (text == null || !text.Contains(part))
                throw new CheckFailed(String.Format("{0}: <{1}> does not contain <{2}>", what, text, part));
        }

        public static T Throws<T>(Action action, string what) where T : Exception
        {
            try
            {
                action();
            }
            catch (T e)
            {
                return e;
            }
            throw new CheckFailed(what + ": no " + typeof(T).Name + " was thrown");
        }

        /// <summary>The EstException of kind that action throws.</summary>
        public static EstException Kind(string kind, Action action, string what)
        {
            EstException e = Throws<EstException>(action, what);
            if (e.Kind != kind)
                throw new CheckFailed(String.Format("{0}: expected error kind {1}, got {2}: {3}", what, kind, e.Kind, e.Message));
            return e;
        }
    }

    public static class Env
    {
        public static string Get(string name)
        {
            string value = Environment.GetEnvironmentVariable(name);
            if (String.IsNullOrEmpty(value))
                throw new CheckFailed("environment variable " + name + " is not set");
            return value;
        }

        public static string Out(string file)
        {
            return Path.Combine(Get("PKI_EST_OUT"), file);
        }

        public static object Vectors()
        {
            return Json.Parse(File.ReadAllText(Out("vectors.json")));
        }

        /// <summary>An https URL on 127.0.0.1 where nothing listens (a port just released).</summary>
        public static string ClosedPortUrl()
        {
            TcpListener listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            return "https://127.0.0.1:" + port;
        }
    }

    public static class Program
    {
        public static int Main(string[] args)
        {
            if (args.Length == 1 && args[0] == "pure")
                return Run(typeof(PureTests).GetMethods().Where(m => m.GetCustomAttributes(typeof(TestAttribute), false).Length > 0), new object[0]);
            if (args.Length >= 2 && args[0] == "lab")
            {
                IEnumerable<MethodInfo> scenario = typeof(LabTests).GetMethods().Where(m => m.GetCustomAttributes(typeof(LabAttribute), false)
                    .Cast<LabAttribute>().Any(a => a.Scenario == args[1]));
                if (!scenario.Any())
                {
                    Console.Error.WriteLine("no lab scenario " + args[1]);
                    return 2;
                }
                return Run(scenario, new object[] { args.Skip(2).ToArray() });
            }
            Console.Error.WriteLine("usage: EstWinTests.exe pure | lab SCENARIO [ARGUMENT...]");
            return 2;
        }

        private static int Run(IEnumerable<MethodInfo> tests, object[] arguments)
        {
            int failed = 0;
            foreach (MethodInfo test in tests.OrderBy(m => m.Name))
            {
                try
                {
                    test.Invoke(null, test.GetParameters().Length == 0 ? new object[0] : arguments);
                    Console.WriteLine("ok " + test.Name);
                }
                catch (TargetInvocationException e)
                {
                    failed++;
                    Exception inner = e.InnerException;
                    Console.WriteLine("FAIL " + test.Name + ": " + (inner is CheckFailed ? inner.Message : inner.ToString()));
                }
            }
            Console.WriteLine(failed == 0 ? "all passed" : failed + " failed");
            return failed == 0 ? 0 : 1;
        }
    }

    /// <summary>Tests that need no server.</summary>
    public static class PureTests
    {
        private static TestPki pki;
        private static RSA leafKey;

        private static TestPki Pki
        {
            get
            {
                if (pki == null)
                {
                    pki = new TestPki("Windows Test Root CA");
                    leafKey = TestKeys.Next();
                }
                return pki;
            }
        }

        private static readonly byte[] LeafName = TestPki.NameOf(new string[] { "C", "DE", "O", "Example, Inc.", "CN", "web01.example.test" });

        /// <summary>A leaf valid from notBefore to notAfter with DNS, IPv4 and IPv6 names, and its key.</summary>
        private static byte[] Leaf(DateTime notBefore, DateTime notAfter)
        {
            TestPki ca = Pki;
            return ca.Issue(LeafName, TestPki.Spki(leafKey), notBefore, notAfter,
                TestPki.Leaf(new string[] { "web01.example.test", "*.apps.example.test" }, new string[] { "192.0.2.7", "2001:db8::7" }));
        }

        private static byte[] Hex(string hex)
        {
            return Der.FromHex(hex.Replace(" ", ""));
        }

        // -- DER ------------------------------------------------------------------------------------

        [Test]
        public static void DerIntegers()
        {
            Check.Bytes(Hex("02 01 00"), Der.Integer(0), "0");
            Check.Bytes(Hex("02 01 7F"), Der.Integer(127), "127");
            Check.Bytes(Hex("02 02 00 80"), Der.Integer(128), "128");
            Check.Bytes(Hex("02 01 FF"), Der.Integer(-1), "-1");
            Check.Bytes(Hex("02 02 01 00"), Der.Integer(256), "256");
            Check.Bytes(Hex("02 02 00 80"), Der.UnsignedInteger(Hex("00 00 80")), "leading zeros dropped, 00 before the high bit");
            Check.Bytes(Hex("02 01 01"), Der.UnsignedInteger(Hex("00 01")), "one leading zero dropped");
            Check.Bytes(Hex("02 01 00"), Der.UnsignedInteger(Hex("00 00")), "zero stays one byte");
        }

        [Test]
        public static void DerLengths()
        {
            int[] sizes = { 0, 127, 128, 255, 256, 65535, 65536 };
            string[] headers = { "04 00", "04 7F", "04 81 80", "04 81 FF", "04 82 01 00", "04 82 FF FF", "04 83 01 00 00" };
            for (int i = 0; i < sizes.Length; i++)
            {
                byte[] encoded = Der.OctetString(new byte[sizes[i]]);
                byte[] header = Hex(headers[i]);
                Check.Bytes(header, encoded.Take(header.Length).ToArray(), "header for " + sizes[i] + " bytes");
                Check.Equal(sizes[i], Der.Parse(encoded).ContentLength, "length read back for " + sizes[i]);
            }
        }

        [Test]
        public static void DerObjectIdentifiers()
        {
            Check.Bytes(Hex("06 09 2A 86 48 86 F7 0D 01 01 0B"), Der.Oid("1.2.840.113549.1.1.11"), "sha256WithRSAEncryption");
            Check.Bytes(Hex("06 03 88 37 03"), Der.Oid("2.999.3"), "first subidentifier above 80");
            string[] oids = { "1.2.840.113549.1.1.11", "2.5.29.17", "0.9.2342.19200300.100.1.25", "2.999.3",
                              "2.25.329800735698586629295641978511506172918", "1.3.6.1.4.1.311.21.8.18446744073709551615" };
            foreach (string oid in oids)
                Check.Equal(oid, Der.Parse(Der.Oid(oid)).ObjectIdentifier(), "round trip of " + oid);
            Check.Throws<ArgumentException>(delegate { Der.Oid("1.40"); }, "second arc above 39 under 1");
            Check.Throws<FormatException>(delegate { Der.DecodeOid(Hex("2A 86")); }, "cut-off arc");
        }

        [Test]
        public static void DerReaderRefusesBrokenInput()
        {
            Check.Throws<FormatException>(delegate { Der.Parse(Hex("30 05 02 01 01")); }, "length past the end");
            Check.Throws<FormatException>(delegate { Der.Parse(Hex("30 03 02 01 01 00")); }, "trailing byte");
            Check.Throws<FormatException>(delegate { Der.Parse(Hex("30")); }, "no length");
            Check.Throws<FormatException>(delegate { Der.Parse(Hex("30 85 01 00 00 00 00")); }, "five length bytes");
            Check.Throws<FormatException>(delegate { Der.Parse(Hex("30 80 02 01 01")); }, "indefinite length without end");
            Check.Throws<FormatException>(delegate { Der.Parse(Hex("04 80 00 00")); }, "indefinite length on a primitive");
            Check.Throws<FormatException>(delegate { Der.Parse(Hex("30 03 30 80 00")).Children(); }, "child cut off");
        }

        [Test]
        public static void DerIndefiniteLengthsAreRead()
        {
            DerNode node = Der.Parse(Hex("30 80 02 01 05 30 80 04 01 AA 00 00 00 00"));
            List<DerNode> children = node.Children();
            Check.Equal(2, children.Count, "children of an indefinite-length SEQUENCE");
            Check.Bytes(Hex("05"), children[0].Content(), "the INTEGER");
            Check.Bytes(Hex("AA"), children[1].Child(0, DerTag.OctetString).Content(), "the nested OCTET STRING");
        }

        [Test]
        public static void DerNamedBitsAndSets()
        {
            Check.Bytes(Hex("03 02 05 A0"), Der.NamedBits(new int[] { 0, 2 }), "digitalSignature, keyEncipherment");
            Check.Bytes(Hex("03 02 07 80"), Der.NamedBits(new int[] { 0 }), "digitalSignature");
            Check.Bytes(Hex("03 03 07 00 80"), Der.NamedBits(new int[] { 8 }), "decipherOnly");
            Check.Bytes(Hex("31 06 04 01 01 04 01 02"), Der.SetOf(new byte[][] { Hex("04 01 02"), Hex("04 01 01") }), "SET OF sorted");
        }

        // -- PEM and base64 bodies ------------------------------------------------------------------

        private static byte[] RecordedPkcs7()
        {
            return HttpRecording.Read("cacerts_der.bin").Body;
        }

        [Test]
        public static void Base64BodiesInAnyLayout()
        {
            byte[] der = RecordedPkcs7();
            string b64 = Convert.ToBase64String(der);
            string lines76 = String.Join("\r\n", Enumerable.Range(0, (b64.Length + 75) / 76).Select(i => b64.Substring(i * 76, Math.Min(76, b64.Length - i * 76))).ToArray()) + "\r\n";
            string[] bodies =
            {
                b64,
                lines76,
                Pem.EncodeBody(der),
                b64.TrimEnd('=') + "\n",
                " \t" + b64.Substring(0, 100) + " \r\n \t" + b64.Substring(100) + "\n\0\0",
                "-----BEGIN PKCS7-----\r\n" + lines76 + "-----END PKCS7-----\r\n",
            };
            foreach (string body in bodies)
                Check.Bytes(der, Pem.DecodeBody(Encoding.ASCII.GetBytes(body), "test"), "decoding " + body.Substring(0, 20).Replace("\r", "\\r").Replace("\n", "\\n"));
            Check.Bytes(der, Pem.DecodeBody(der, "test"), "raw DER");
            Check.Bytes(der, Pem.DecodeBody(der.Concat(Encoding.ASCII.GetBytes("\r\n")).ToArray(), "test"), "raw DER and a line end");
            Check.Kind(EstErrorKind.BadResponse, delegate { Pem.DecodeBody(Encoding.ASCII.GetBytes("%%% not base64 %%%"), "test"); }, "garbage");
            Check.Kind(EstErrorKind.BadResponse, delegate { Pem.DecodeBody(Encoding.ASCII.GetBytes(" \r\n\0"), "test"); }, "blank");
            Check.Kind(EstErrorKind.BadResponse, delegate { Pem.DecodeBody(Encoding.ASCII.GetBytes("QUJD=QUJD"), "test"); }, "padding inside");
            Check.Equal("\n", Pem.EncodeBody(new byte[48]).Substring(64, 1), "requests wrap at 64 columns");
            Check.True(Pem.EncodeBody(new byte[10]).EndsWith("\n"), "requests end with a newline");
        }

        [Test]
        public static void CertificatesFromPemDerAndPkcs7()
        {
            byte[] one = Pki.CertificateDer;
            byte[] two = Leaf(DateTime.UtcNow.AddDays(-1), DateTime.UtcNow.AddDays(30));
            string pem = "Bundle made by hand\r\n" + Pem.Encode("CERTIFICATE", one).Replace("\n", "\r\n") + "\r\n  \r\n" + Pem.Encode("CERTIFICATE", two);
            List<byte[]> read = Pem.ReadCertificates(Encoding.ASCII.GetBytes(pem));
            Check.Equal(2, read.Count, "certificates in the PEM bundle");
            Check.Bytes(one, read[0], "first PEM certificate");
            Check.Bytes(two, read[1], "second PEM certificate");
            Check.Bytes(one, Pem.ReadCertificates(one).Single(), "a DER certificate");
            Check.Bytes(two, Pem.ReadCertificates(Encoding.ASCII.GetBytes(Convert.ToBase64String(two))).Single(), "a base64 certificate");
            Check.Equal(5, Pem.ReadCertificates(RecordedPkcs7()).Count, "a DER PKCS#7");
            Check.Throws<FormatException>(delegate { Pem.ReadCertificates(Encoding.ASCII.GetBytes("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); }, "PEM without certificates");
        }

        // -- PKCS#7 and the recorded answers of the Python unit tests --------------------------------

        [Test]
        public static void RecordedCaCertsAnswersAgreeWithThePythonEngine()
        {
            Dictionary<string, object> expected = (Dictionary<string, object>)Json.Parse(File.ReadAllText(Path.Combine(Env.Get("PKI_EST_FIXTURES"), "cacerts_expected.json")));
            List<string> fingerprints = ((List<object>)expected["fingerprints"]).Cast<string>().ToList();
            List<string> subjects = ((List<object>)expected["subjects"]).Cast<string>().ToList();
            string[] recordings = { "cacerts_b64_76_crlf.bin", "cacerts_b64_64_lf.bin", "cacerts_b64_single_line_nul.bin", "cacerts_der.bin", "cacerts_pem.bin" };
            foreach (string recording in recordings)
            {
                List<byte[]> certs = EstAnswers.Certificates(HttpRecording.Read(recording).Answer(), "/cacerts answer");
                List<CertFacts> facts = certs.Select(CertFacts.Parse).ToList();
                Check.Equal(String.Join(" ", fingerprints.ToArray()), String.Join(" ", facts.Select(f => f.Sha256Fingerprint).ToArray()), recording + " fingerprints");
                Check.Equal(String.Join(" | ", subjects.ToArray()), String.Join(" | ", facts.Select(f => f.Subject).ToArray()), recording + " subjects");
            }
            using (SHA256 sha = SHA256.Create())
                Check.Equal((string)expected["pkcs7_der_sha256"], Der.Hex(sha.ComputeHash(RecordedPkcs7())).ToLowerInvariant(), "the DER recording");
        }

        [Test]
        public static void RecordedAnswersOfOtherKinds()
        {
            Check.Kind(EstErrorKind.UnexpectedContentType, delegate { EstAnswers.Certificates(HttpRecording.Read("cacerts_html_200.bin").Answer(), "/cacerts answer"); }, "an HTML page");
            EnrollResult pending = EstAnswers.Enrollment(HttpRecording.Read("simpleenroll_202.bin").Answer(), "simpleenroll", DateTime.UtcNow);
            Check.True(pending.IsPending, "202 is pending");
            Check.Equal(600, pending.RetryAfterSeconds, "Retry-After of the 202");
            Check.Equal("request queued for manual approval", pending.ServerText, "the server's words");
            EstException denied = Check.Kind(EstErrorKind.AuthRequired, delegate { EstAnswers.Enrollment(HttpRecording.Read("simpleenroll_401.bin").Answer(), "simpleenroll", DateTime.UtcNow); }, "401");
            Check.Equal(401, denied.Status, "status of the 401");
            Check.Contains(denied.Message, "authentication required", "the server's words in the message");
        }

        [Test]
        public static void Pkcs7WithIndefiniteLengthsAndThePickOfTheIssuedCertificate()
        {
            byte[] der = RecordedPkcs7();
            DerNode top = Der.Parse(der);
            byte[] ber = Hex("30 80").Concat(top.Content()).Concat(Hex("00 00")).ToArray();
            List<byte[]> fromDer = Pkcs7.ParseCertsOnly(der);
            List<byte[]> fromBer = Pkcs7.ParseCertsOnly(ber);
            Check.Equal(fromDer.Count, fromBer.Count, "certificates from the BER form");
            for (int i = 0; i < fromDer.Count; i++)
                Check.Bytes(fromDer[i], fromBer[i], "certificate " + i + " from the BER form");
            Check.Throws<FormatException>(delegate { Pkcs7.ParseCertsOnly(Der.Sequence(Der.Oid("1.2.840.113549.1.7.1"), Der.Explicit(0, Der.OctetString(new byte[1])))); }, "data, not signedData");

            byte[] leaf = Leaf(DateTime.UtcNow.AddDays(-1), DateTime.UtcNow.AddDays(30));
            List<byte[]> answer = new List<byte[]> { Pki.CertificateDer, leaf };
            Check.Bytes(leaf, Pkcs7.FindIssued(answer, TestPki.Spki(leafKey)), "issued certificate found by key, not by position");
            Check.True(Pkcs7.FindIssued(answer, TestPki.Spki(Pki.Key)) == Pki.CertificateDer, "the CA's key finds the CA");
            Check.True(Pkcs7.FindIssued(answer, Pkcs10Builder.RsaSpki(new byte[] { 0xC5 }, new byte[] { 3 })) == null, "no certificate for an unknown key");
            Check.Bytes(leaf, Pkcs7.FindLeaf(answer), "the leaf is no one's issuer");
        }

        // -- certificate facts ----------------------------------------------------------------------

        [Test]
        public static void FactsOfARecordedEcCertificate()
        {
            CertFacts root = CertFacts.Parse(Pkcs7.ParseCertsOnly(RecordedPkcs7())[0]);
            Check.Equal("CN=Fixture Root CA,O=pki.est tests", root.Subject, "subject");
            Check.Equal("2026-01-01T00:00:00Z", root.NotBeforeIso, "notBefore (UTCTime)");
            Check.Equal("2125-12-08T00:00:00Z", root.NotAfterIso, "notAfter (GeneralizedTime)");
            Check.Equal("32E5D99693E6DD2ADEE9191D60FEA848AA91761D", root.Serial, "serial");
            Check.Equal("ec-p256", root.KeyType, "key type");
            Check.True(root.IsCa && root.IsSelfIssued, "a self-issued CA");
            using (SHA1 sha = SHA1.Create())
                Check.Equal(Der.Hex(sha.ComputeHash(root.Encoded)), root.Thumbprint, "thumbprint is the upper-case SHA-1");
        }

        [Test]
        public static void FactsAgreeWithX509Certificate2()
        {
            DateTime notBefore = new DateTime(2026, 3, 1, 8, 30, 0, DateTimeKind.Utc);
            byte[] der = Leaf(notBefore, new DateTime(2060, 3, 1, 8, 30, 0, DateTimeKind.Utc));
            CertFacts facts = CertFacts.Parse(der);
            X509Certificate2 cert = new X509Certificate2(der);
            Check.Equal(cert.Thumbprint, facts.Thumbprint, "thumbprint");
            Check.Equal(cert.SerialNumber.TrimStart('0'), facts.Serial, "serial");
            Check.Equal(cert.NotAfter.ToUniversalTime(), facts.NotAfter, "notAfter");
            Check.Equal(notBefore, facts.NotBefore, "notBefore");
            Check.Equal("2060-03-01T08:30:00Z", facts.NotAfterIso, "notAfter text");
            Check.Equal(@"CN=web01.example.test,O=Example\, Inc.,C=DE", facts.Subject, "subject, RFC 4514");
            Check.Equal("CN=Windows Test Root CA,O=pki.est tests", facts.Issuer, "issuer");
            Check.Equal("DNS:web01.example.test DNS:*.apps.example.test IP:192.0.2.7 IP:2001:db8::7", String.Join(" ", facts.SubjectAltNames.ToArray()), "subjectAltName");
            Check.Equal("1.3.6.1.5.5.7.3.1 1.3.6.1.5.5.7.3.2", String.Join(" ", facts.ExtendedKeyUsages.ToArray()), "EKU");
            Check.Equal("rsa-2048", facts.KeyType, "key type");
            Check.Bytes(cert.PublicKey.EncodedKeyValue.RawData, Der.Parse(facts.SubjectPublicKeyInfo).Child(1, DerTag.BitString).BitStringBytes(), "public key");
            Check.True(!facts.IsCa && facts.CriticalExtensions[CertFacts.KeyUsageOid], "a critical keyUsage, no CA");
        }

        [Test]
        public static void NamesAreEscapedAsRfc4514Says()
        {
            Check.Equal(@"\#1", CertFacts.EscapeValue("#1"), "leading #");
            Check.Equal(@"\ a\ ", CertFacts.EscapeValue(" a "), "leading and trailing space");
            Check.Equal(@"a\+b\;c\<d\>e\""f\\g", CertFacts.EscapeValue("a+b;c<d>e\"f\\g"), "special characters");
        }

        [Test]
        public static void SelectorsByThumbprintOrSubject()
        {
            CertFacts facts = CertFacts.Parse(Leaf(DateTime.UtcNow.AddDays(-1), DateTime.UtcNow.AddDays(30)));
            string t = facts.Thumbprint;
            string spaced = String.Join(" ", Enumerable.Range(0, 20).Select(i => t.Substring(2 * i, 2).ToLowerInvariant()).ToArray());
            Check.True(facts.Matches(t), "upper case");
            Check.True(facts.Matches(t.ToLowerInvariant()), "lower case");
            Check.True(facts.Matches(spaced), "lower case with spaces");
            Check.True(facts.Matches(spaced.Replace(' ', ':')), "colons");
            Check.True(facts.Matches("\u200E" + t), "with the mark the certificate dialog copies");
            Check.True(!facts.Matches(t.Substring(1) + "0"), "another thumbprint");
            Check.True(facts.Matches(@"CN=web01.example.test, O=Example\, Inc., C=DE"), "the subject as Windows shows it");
            Check.True(facts.Matches(@"cn=WEB01.example.test,o=example\, inc.,c=de"), "names and values in any case");
            Check.True(!facts.Matches(@"C=DE, O=Example\, Inc., CN=web01.example.test"), "the reversed order is another name");
            Check.True(!facts.Matches("CN=web01.example.test"), "a part of the subject is not the subject");
            Check.Kind(EstErrorKind.InvalidInput, delegate { facts.Matches("web01"); }, "neither thumbprint nor subject");
        }

        [Test]
        public static void RenewalWindowsAndTheirBoundaries()
        {
            DateTime notBefore = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
            DateTime notAfter = new DateTime(2026, 4, 1, 0, 0, 0, DateTimeKind.Utc);
            TimeSpan tenDays = TimeSpan.FromDays(10);
            Check.True(CertFacts.IsDue(notAfter, tenDays, notAfter - tenDays), "due exactly when the window opens");
            Check.True(!CertFacts.IsDue(notAfter, tenDays, notAfter - tenDays - TimeSpan.FromSeconds(1)), "not due a second before");
            Check.True(CertFacts.IsDue(notAfter, tenDays, notAfter.AddDays(3)), "an expired certificate is due");

            RenewWindow window = RenewWindow.Parse("10d");
            Check.Equal(RenewalDecision.None, RenewalDecision.Decide(notBefore, notAfter, window, notAfter - tenDays - TimeSpan.FromSeconds(1), false).Action, "before the window");
            RenewalDecision inside = RenewalDecision.Decide(notBefore, notAfter, window, notAfter - tenDays, false);
            Check.Equal(RenewalDecision.Renew, inside.Action, "inside the window");
            Check.Contains(inside.Reason, "inside its renewal window since 2026-03-22T00:00:00Z", "reason");
            RenewalDecision forced = RenewalDecision.Decide(notBefore, notAfter, window, notBefore.AddDays(1), true);
            Check.Equal(RenewalDecision.Renew, forced.Action, "force");
            Check.Equal("force is set", forced.Reason, "force reason");
            Check.Equal(RenewalDecision.Expired, RenewalDecision.Decide(notBefore, notAfter, window, notAfter, true).Action, "expired at notAfter, force or not");
            Check.Equal(RenewalDecision.Expired, RenewalDecision.Decide(notBefore, notAfter, window, notBefore.AddSeconds(-1), false).Action, "not yet valid");

            Check.Equal(TimeSpan.FromDays(30), RenewWindow.Parse(null).Before(notBefore, notAfter), "default: a third of 90 days");
            Check.Equal(TimeSpan.FromDays(45), RenewWindow.Parse("50%").Before(notBefore, notAfter), "50%");
            Check.Equal(TimeSpan.FromDays(30), RenewWindow.Parse("30").Before(notBefore, notAfter), "30 is days");
            Check.Equal(TimeSpan.FromHours(12), RenewWindow.Parse("12h").Before(notBefore, notAfter), "12h");
            Check.Equal(TimeSpan.FromMinutes(90), RenewWindow.Parse("90m").Before(notBefore, notAfter), "90m");
            Check.Equal(TimeSpan.FromSeconds(600), RenewWindow.Parse(" 600s ").Before(notBefore, notAfter), "600s");
            Check.Kind(EstErrorKind.InvalidInput, delegate { RenewWindow.Parse("soon"); }, "a word");
            Check.Kind(EstErrorKind.InvalidInput, delegate { RenewWindow.Parse("150%"); }, "more than the lifetime");
        }

        // -- ECDSA signatures and EC keys -----------------------------------------------------------

        [Test]
        public static void EcdsaSignatureForms()
        {
            byte[] p1363 = new byte[64];
            p1363[31] = 0x01;                 // r = 1: leading zeros go
            p1363[32] = 0x80;                 // s has its high bit set: a 00 comes first
            p1363[63] = 0x02;
            byte[] der = EcdsaSignature.P1363ToDer(p1363);
            Check.Bytes(Hex("30 26 02 01 01 02 21 00 80" + String.Concat(Enumerable.Repeat(" 00", 30).ToArray()) + " 02"), der, "DER of r = 1, s = 0x80..02");
            Check.Bytes(p1363, EcdsaSignature.DerToP1363(der, 32), "and back");
            Check.Bytes(Hex("30 06 02 01 00 02 01 00"), EcdsaSignature.P1363ToDer(new byte[96]), "P-384 zeros");
            Check.Throws<ArgumentException>(delegate { EcdsaSignature.P1363ToDer(new byte[63]); }, "odd length");
            Check.Throws<FormatException>(delegate { EcdsaSignature.DerToP1363(der, 16); }, "value longer than the field");

            // Signatures Python's cryptography made, in both forms (the wrapper writes them).
            List<object> vectors = (List<object>)((Dictionary<string, object>)Env.Vectors())["ecdsa"];
            Check.True(vectors.Count >= 8, "ECDSA vectors present");
            foreach (Dictionary<string, object> vector in vectors)
            {
                byte[] raw = Der.FromHex((string)vector["p1363"]);
                byte[] expected = Der.FromHex((string)vector["der"]);
                Check.Bytes(expected, EcdsaSignature.P1363ToDer(raw), "P1363 to DER of a " + raw.Length + "-byte signature");
                Check.Bytes(raw, EcdsaSignature.DerToP1363(expected, raw.Length / 2), "DER to P1363");
            }
        }

        [Test]
        public static void EcSubjectPublicKeyInfoMatchesPython()
        {
            List<object> vectors = (List<object>)((Dictionary<string, object>)Env.Vectors())["ec_spki"];
            Check.Equal(2, vectors.Count, "EC key vectors");
            foreach (Dictionary<string, object> vector in vectors)
            {
                byte[] x = Der.FromHex((string)vector["x"]);
                byte[] y = Der.FromHex((string)vector["y"]);
                string curve = (string)vector["curve"];
                byte[] spki = curve == "P-256" ? Pkcs10Builder.EcP256Spki(x, y) : Pkcs10Builder.EcP384Spki(x, y);
                Check.Bytes(Der.FromHex((string)vector["der"]), spki, curve + " SubjectPublicKeyInfo");
                Check.Equal(curve == "P-256" ? "ec-p256" : "ec-p384", CertFacts.KeyTypeOf(spki), curve + " key type");
            }
            byte[] shortX = new byte[31];
            shortX[0] = 0x7F;
            Check.Equal((byte)0x00, Der.Parse(Pkcs10Builder.EcP256Spki(shortX, new byte[32])).Child(1, DerTag.BitString).BitStringBytes()[1], "short coordinates are left-padded");
        }

        // -- PKCS#10 --------------------------------------------------------------------------------

        /// <summary>Checks the self-signature with the RSA public key in the request.</summary>
        private static void CheckSignature(byte[] csr, RSA key)
        {
            DerNode request = Der.Parse(csr);
            byte[] info = request.Child(0, DerTag.Sequence).Encoded();
            byte[] signature = request.Child(2, DerTag.BitString).BitStringBytes();
            Check.True(key.VerifyData(info, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1), "the CSR signature verifies");
        }

        [Test]
        public static void CsrsForPythonToCheck()
        {
            RSA key = TestKeys.Next();
            byte[] full = new Pkcs10Builder()
                .AddSubject("C", "DE").AddSubject("O", "Example, Inc.").AddSubject("OU", "Ops").AddSubject("CN", "win-host.example.test")
                .AddSubjectAltName("DNS:win-host.example.test").AddDns("alias.example.test").AddSubjectAltName("IP:192.0.2.10")
                .AddIp("2001:db8::10").AddSubjectAltName("email:ops@example.test").AddSubjectAltName("URI:https://win-host.example.test/")
                .AddKeyUsage("digitalSignature").AddKeyUsage("keyEncipherment")
                .AddExtendedKeyUsage("serverAuth").AddExtendedKeyUsage("clientAuth").AddExtendedKeyUsage("1.3.6.1.5.5.7.3.17")
                .SetChallengePassword("s3cret pw")
                .Build(new RsaCsrSigner(key));
            CheckSignature(full, key);
            File.WriteAllBytes(Env.Out("csr_full.der"), full);

            byte[] sanOnly = new Pkcs10Builder().AddDns("no-subject.example.test").Build(new RsaCsrSigner(key));
            File.WriteAllBytes(Env.Out("csr_san_only.der"), sanOnly);

            // The re-enrollment request repeats the certificate's subject, names and usages.
            byte[] leaf = Leaf(DateTime.UtcNow.AddDays(-1), DateTime.UtcNow.AddDays(30));
            File.WriteAllText(Env.Out("renewed_from.pem"), Pem.Encode("CERTIFICATE", leaf));
            byte[] renewal = RenewalRunner.RenewalRequest(CertFacts.Parse(leaf)).Build(new RsaCsrSigner(leafKey));
            CheckSignature(renewal, leafKey);
            File.WriteAllBytes(Env.Out("csr_renewal.der"), renewal);

            Check.Kind(EstErrorKind.InvalidInput, delegate { new Pkcs10Builder().AddKeyUsage("keyUsage"); }, "unknown key usage");
            Check.Kind(EstErrorKind.InvalidInput, delegate { new Pkcs10Builder().AddExtendedKeyUsage("webAuth"); }, "unknown EKU");
            Check.Kind(EstErrorKind.InvalidInput, delegate { new Pkcs10Builder().AddSubject("C", "DEU"); }, "three-letter country");
            Check.Kind(EstErrorKind.InvalidInput, delegate { new Pkcs10Builder().AddSubject("CN", "a\nb"); }, "control character");
            Check.Kind(EstErrorKind.InvalidInput, delegate { new Pkcs10Builder().AddSubjectAltName("RID:1.2.3"); }, "unknown SAN kind");
            Check.Kind(EstErrorKind.InvalidInput, delegate { new Pkcs10Builder().AddIp("300.1.1.1"); }, "bad IP");
            Check.Kind(EstErrorKind.InvalidInput, delegate { new Pkcs10Builder().Build(new RsaCsrSigner(key)); }, "neither subject nor SAN");
        }

        // -- server identity, URLs, answers ---------------------------------------------------------

        [Test]
        public static void HostNamesMatchTheSubjectAltName()
        {
            CertFacts facts = CertFacts.Parse(Leaf(DateTime.UtcNow.AddDays(-1), DateTime.UtcNow.AddDays(30)));
            string[] yes = { "web01.example.test", "WEB01.Example.Test", "web01.example.test.", "a.apps.example.test", "192.0.2.7", "[2001:db8::7]", "2001:DB8:0:0::7" };
            string[] no = { "example.test", "apps.example.test", "a.b.apps.example.test", "192.0.2.8", "::1", "other.example.test" };
            foreach (string host in yes)
                Check.True(HostName.Matches(facts, host), host + " matches");
            foreach (string host in no)
                Check.True(!HostName.Matches(facts, host), host + " does not match");
            byte[] tld = Pki.Issue(LeafName, TestPki.Spki(leafKey), DateTime.UtcNow, DateTime.UtcNow.AddDays(1), TestPki.Leaf(new string[] { "*.test" }, new string[0]));
            Check.True(!HostName.Matches(CertFacts.Parse(tld), "example.test"), "no wildcard for a whole top-level domain");
        }

        [Test]
        public static void BaseUrls()
        {
            Check.Equal("https://est.example.test:8443/.well-known/est", EstClient.BuildBaseUrl("https://est.example.test:8443", null), "origin");
            Check.Equal("https://est.example.test/.well-known/est/iot", EstClient.BuildBaseUrl("https://est.example.test/.well-known/est/", "iot"), "well-known and a label");
            Check.Equal("https://est.example.test/pki/.well-known/est", EstClient.BuildBaseUrl("https://est.example.test/pki", ""), "a prefix");
            Check.Equal("https://[::1]:8443/.well-known/est", EstClient.BuildBaseUrl("https://[::1]:8443", null), "IPv6");
            Check.Kind(EstErrorKind.InvalidInput, delegate { EstClient.BuildBaseUrl("http://est.example.test", null); }, "http");
            Check.Kind(EstErrorKind.InvalidInput, delegate { EstClient.BuildBaseUrl("https://est.example.test/?a=b", null); }, "query");
            Check.Kind(EstErrorKind.InvalidInput, delegate { EstClient.BuildBaseUrl("https://est.example.test", "a/b"); }, "label with a slash");
            Check.Kind(EstErrorKind.InvalidInput, delegate { EstClient.BuildBaseUrl("", null); }, "empty");
        }

        [Test]
        public static void ErrorAnswersHaveTheKindsOfThePythonEngine()
        {
            Dictionary<int, string> kinds = new Dictionary<int, string>
            {
                { 400, EstErrorKind.BadRequest }, { 401, EstErrorKind.AuthRequired }, { 403, EstErrorKind.Forbidden },
                { 404, EstErrorKind.NotSupported }, { 415, EstErrorKind.BadRequest }, { 500, EstErrorKind.Http },
                { 501, EstErrorKind.NotSupported }, { 503, EstErrorKind.Http }, { 302, EstErrorKind.Http },
            };
            foreach (KeyValuePair<int, string> pair in kinds)
            {
                EstAnswer answer = new EstAnswer(pair.Key, "text/plain; charset=utf-8", null, Encoding.UTF8.GetBytes("  the\r\nreason  "), "https://est.example.test/.well-known/est/simpleenroll");
                EstException e = Check.Kind(pair.Value, delegate { EstAnswers.ThrowIfError(answer, "simpleenroll"); }, "HTTP " + pair.Key);
                Check.Equal(pair.Key, e.Status, "status of " + pair.Key);
                Check.Equal("the reason", e.ServerText, "server text of " + pair.Key);
            }
            EstAnswer binary = new EstAnswer(500, "application/octet-stream", null, new byte[] { 0x30, 0x00 }, "u");
            Check.True(Check.Kind(EstErrorKind.Http, delegate { EstAnswers.ThrowIfError(binary, "cacerts"); }, "binary 500").ServerText == null, "a binary body is not quoted");
            EstAnswers.ThrowIfError(new EstAnswer(204, null, null, null, "u"), "csrattrs");
        }

        [Test]
        public static void RetryAfterValues()
        {
            DateTime now = new DateTime(2026, 5, 1, 12, 0, 0, DateTimeKind.Utc);
            Check.Equal(120, EstAnswers.ParseRetryAfter("120", now), "seconds");
            Check.Equal(7, EstAnswers.ParseRetryAfter(" 0007 ", now), "leading zeros");
            Check.Equal(86400, EstAnswers.ParseRetryAfter("99999999999999999999", now), "capped at a day");
            Check.Equal(90, EstAnswers.ParseRetryAfter(now.AddSeconds(90).ToString("r", System.Globalization.CultureInfo.InvariantCulture), now), "an HTTP-date");
            Check.Equal(0, EstAnswers.ParseRetryAfter("Fri, 01 May 2026 11:00:00 GMT", now), "a date in the past");
            Check.Equal(30, EstAnswers.ParseRetryAfter("Friday, 01-May-26 12:00:30 GMT", now), "RFC 850 date");
            Check.Equal(-1, EstAnswers.ParseRetryAfter("soon", now), "a word");
            Check.Equal(-1, EstAnswers.ParseRetryAfter("1.5", now), "a fraction");
            Check.Equal(-1, EstAnswers.ParseRetryAfter(null, now), "none");
        }

        // -- JSON and the renewal config ------------------------------------------------------------

        [Test]
        public static void JsonReader()
        {
            Dictionary<string, object> value = (Dictionary<string, object>)Json.Parse("\uFEFF{ \"a\": [1, -2.5e1, true, false, null], \"b\": \"x\\u00e9\\n\\\"\", \"c\": {} }");
            List<object> list = (List<object>)value["a"];
            Check.Equal(1.0, (double)list[0], "1");
            Check.Equal(-25.0, (double)list[1], "-2.5e1");
            Check.Equal(true, (bool)list[2], "true");
            Check.True(list[4] == null, "null");
            Check.Equal("x\u00e9\n\"", (string)value["b"], "escapes");
            Check.Equal(0, ((Dictionary<string, object>)value["c"]).Count, "empty object");
            Check.Contains(Check.Throws<FormatException>(delegate { Json.Parse("{\"a\": 1,\n}"); }, "trailing comma").Message, "line 2 column 1", "position");
            Check.Throws<FormatException>(delegate { Json.Parse("{\"a\": 1, \"a\": 2}"); }, "duplicate key");
            Check.Throws<FormatException>(delegate { Json.Parse("\"open"); }, "open string");
            Check.Throws<FormatException>(delegate { Json.Parse("[01]"); }, "leading zero");
            Check.Throws<FormatException>(delegate { Json.Parse("{} x"); }, "text after");
        }

        [Test]
        public static void RenewalConfigs()
        {
            RenewalConfig config = RenewalConfig.Parse(@"{""url"": ""https://est.example.test:8443"", ""ca_label"": ""iot"", ""ca_path"": ""C:\\ProgramData\\pki.est\\ca.pem"",
                ""certificate"": ""CN=web01"", ""store_location"": ""currentuser"", ""store_name"": ""My"", ""renew_before"": ""12h"",
                ""rekey"": true, ""key_type"": ""ec-p384"", ""key_provider"": ""Microsoft Platform Crypto Provider"", ""timeout"": 10}");
            Check.Equal("CurrentUser", config.StoreLocation, "store location, canonical case");
            Check.Equal(@"C:\ProgramData\pki.est\ca.pem", config.CaPath, "ca_path");
            Check.Equal(12 * 3600.0, config.RenewBefore.Seconds, "renew_before");
            Check.True(config.Rekey, "rekey");
            Check.Equal("ec-p384", config.KeyType, "key type");
            Check.True(config.FriendlyName == null, "no friendly name");
            Check.Equal(RenewalConfig.PlatformProvider, config.KeyProvider, "provider");
            Check.Equal(10, config.TimeoutSeconds, "timeout");

            RenewalConfig defaults = RenewalConfig.Parse(@"{""url"": ""https://est"", ""ca_path"": ""ca.pem"", ""friendly_name"": ""pki.est a"", ""renew_before"": 30}");
            Check.Equal("pki.est a", defaults.FriendlyName, "friendly name");
            Check.Equal("LocalMachine", defaults.StoreLocation, "default location");
            Check.Equal("My", defaults.StoreName, "default store");
            Check.Equal(30 * 86400.0, defaults.RenewBefore.Seconds, "a number is days");
            Check.True(!defaults.Rekey && defaults.KeyType == null, "same key by default");
            Check.Equal(RenewalConfig.SoftwareProvider, defaults.KeyProvider, "default provider");

            string[] bad = {
                "[]", @"{""url"": ""https://est"", ""ca_path"": ""c"", ""certificate"": ""CN=a"", ""renew"": ""1d""}",
                @"{""ca_path"": ""c"", ""certificate"": ""CN=a""}", @"{""url"": ""http://est"", ""ca_path"": ""c"", ""certificate"": ""CN=a""}",
                @"{""url"": ""https://est"", ""ca_path"": ""c"", ""certificate"": ""CN=a"", ""store_location"": ""Machine""}",
                @"{""url"": ""https://est"", ""ca_path"": ""c"", ""certificate"": ""CN=a"", ""timeout"": 0}",
                @"{""url"": ""https://est"", ""ca_path"": ""c"", ""certificate"": ""CN=a"", ""rekey"": ""yes""}",
                @"{""url"": ""https://est"", ""ca_path"": ""c"", ""certificate"": ""CN=a"", ""key_type"": ""dsa-1024""}",
                @"{""url"": 5, ""ca_path"": ""c"", ""certificate"": ""CN=a""}", "{\"url\": ",
                @"{""url"": ""https://est"", ""ca_path"": ""c""}",
            };
            string[] named = { "JSON object", "unknown key \"renew\"", "\"url\" is required", "https://", "LocalMachine, CurrentUser", "timeout", "rekey",
                               "key_type", "\"url\" must be a string", "JSON line 1", "\"certificate\" or \"friendly_name\" is required" };
            for (int i = 0; i < bad.Length; i++)
                Check.Contains(Check.Kind(EstErrorKind.InvalidInput, delegate { RenewalConfig.Parse(bad[i]); }, "bad config " + i).Message, named[i], "message of bad config " + i);
        }

        // -- the renewal runner with fakes, no server -------------------------------------------------

        private static RenewalConfig Config(string renewBefore, string caPath)
        {
            RenewalConfig config = new RenewalConfig();
            config.Url = Env.ClosedPortUrl();
            config.CaPath = caPath;
            config.Certificate = @"CN=web01.example.test, O=Example\, Inc., C=DE";
            config.RenewBefore = RenewWindow.Parse(renewBefore);
            config.TimeoutSeconds = 5;
            return config;
        }

        private sealed class Fixture
        {
            public readonly FakeStore Store = new FakeStore();
            public readonly FakeKeyFactory Keys;
            public readonly MemoryLog Log = new MemoryLog();
            public readonly List<string> Before;

            public Fixture(DateTime notBefore, DateTime notAfter, bool withKey)
            {
                Keys = new FakeKeyFactory(Store);
                Store.Add(Leaf(notBefore, notAfter), withKey ? leafKey : null, null);
                Before = Store.Thumbprints();
            }

            public int Run(RenewalConfig config, bool check, bool force)
            {
                return new RenewalRunner(config, Store, Keys, Log).Run(check, force);
            }

            public void Unchanged(string what)
            {
                Check.Equal(String.Join(",", Before.ToArray()), String.Join(",", Store.Thumbprints().ToArray()), what + ": store unchanged");
                Check.Equal("list", String.Join(",", Store.Calls.ToArray()), what + ": nothing but a look-up");
                Check.Equal(0, Keys.Created.Count, what + ": no key created");
            }
        }

        [Test]
        public static void SelectingTheCurrentCertificate()
        {
            DateTime now = DateTime.UtcNow;
            FakeStore store = new FakeStore();
            StoredCertificate old = store.Add(Leaf(now.AddDays(-80), now.AddDays(10)), leafKey, "pki.est web");
            StoredCertificate renewed = store.Add(Leaf(now.AddDays(-1), now.AddDays(89)), leafKey, "pki.est web");
            store.Add(Leaf(now.AddDays(-1), now.AddDays(90)), null, null);
            byte[] otherName = TestPki.NameOf(new string[] { "CN", "other.example.test" });
            StoredCertificate other = store.Add(Pki.Issue(otherName, TestPki.Spki(leafKey), now.AddDays(-1), now.AddDays(95),
                TestPki.Leaf(new string[] { "other.example.test" }, new string[0])), leafKey, "pki.est other");
            List<StoredCertificate> all = store.Certificates();
            string subject = @"CN=web01.example.test, O=Example\, Inc., C=DE";
            Check.Equal(renewed.Facts.Thumbprint, StoredCertificate.Select(all, subject, null).Facts.Thumbprint, "by subject: the latest with a key before a later one without");
            Check.Equal(renewed.Facts.Thumbprint, StoredCertificate.Select(all, old.Facts.Thumbprint, null).Facts.Thumbprint, "a thumbprint leads to its renewal");
            Check.Equal(renewed.Facts.Thumbprint, StoredCertificate.Select(all, null, "pki.est web").Facts.Thumbprint, "by friendly name");
            Check.Equal(other.Facts.Thumbprint, StoredCertificate.Select(all, subject, "pki.est other").Facts.Thumbprint, "the friendly name wins");
            Check.True(StoredCertificate.Select(all, "CN=nobody", null) == null, "no such subject");
            Check.True(StoredCertificate.Select(all, null, "pki.est nobody") == null, "no such friendly name");
        }

        [Test]
        public static void RunnerNotDueSendsNothing()
        {
            Fixture fixture = new Fixture(DateTime.UtcNow.AddDays(-10), DateTime.UtcNow.AddDays(80), true);
            // The server port is closed and the CA file absent: any attempt to use them would fail the run.
            Check.Equal(RenewalRunner.ExitOk, fixture.Run(Config("30d", "/nonexistent/ca.pem"), false, false), "exit code");
            fixture.Unchanged("not due");
            Check.Contains(fixture.Log.All(), "INFO 1000 CN=web01.example.test", "log");
            Check.Contains(fixture.Log.All(), ": ok: nothing to do: valid until", "log");
        }

        [Test]
        public static void RunnerCheckModeOnlyTells()
        {
            Fixture fixture = new Fixture(DateTime.UtcNow.AddDays(-80), DateTime.UtcNow.AddDays(10), true);
            Check.Equal(RenewalRunner.ExitOk, fixture.Run(Config("30d", "/nonexistent/ca.pem"), true, false), "exit code");
            fixture.Unchanged("check mode");
            Check.Contains(fixture.Log.All(), "INFO 1003", "log");
            Check.Contains(fixture.Log.All(), "due: would renew: the certificate is inside its renewal window", "log");
        }

        [Test]
        public static void RunnerGivesUpOnWhatItCannotRenew()
        {
            Fixture expired = new Fixture(DateTime.UtcNow.AddDays(-90), DateTime.UtcNow.AddSeconds(-1), true);
            Check.Equal(RenewalRunner.ExitFailed, expired.Run(Config("30d", "/nonexistent/ca.pem"), false, true), "expired, even with force");
            expired.Unchanged("expired");
            Check.Contains(expired.Log.All(), "ERROR 2001", "expired log");
            Check.Contains(expired.Log.All(), "run the playbook", "expired log");

            Fixture keyless = new Fixture(DateTime.UtcNow.AddDays(-80), DateTime.UtcNow.AddDays(10), false);
            Check.Equal(RenewalRunner.ExitFailed, keyless.Run(Config("30d", "/nonexistent/ca.pem"), false, false), "no private key");
            Check.Contains(keyless.Log.All(), "has no private key", "keyless log");

            Fixture missing = new Fixture(DateTime.UtcNow.AddDays(-80), DateTime.UtcNow.AddDays(10), true);
            RenewalConfig other = Config("30d", "/nonexistent/ca.pem");
            other.Certificate = "CN=other.example.test";
            Check.Equal(RenewalRunner.ExitFailed, missing.Run(other, false, false), "no such certificate");
            Check.Contains(missing.Log.All(), "no certificate in LocalMachine\\My", "missing log");

            RenewalConfig unreadable = Config("30d", "/nonexistent/ca.pem");
            unreadable.Certificate = "web01";
            Check.Equal(RenewalRunner.ExitConfig, missing.Run(unreadable, false, false), "a selector that is neither thumbprint nor subject");
        }

        [Test]
        public static void RunnerFailureLeavesTheStoreAsItWas()
        {
            string bundle = Env.Out("runner_ca.pem");
            File.WriteAllText(bundle, Pem.Encode("CERTIFICATE", Pki.CertificateDer));
            Fixture fixture = new Fixture(DateTime.UtcNow.AddDays(-80), DateTime.UtcNow.AddDays(10), true);
            Check.Equal(RenewalRunner.ExitFailed, fixture.Run(Config("30d", bundle), false, false), "exit code");
            Check.Equal(String.Join(",", fixture.Before.ToArray()), String.Join(",", fixture.Store.Thumbprints().ToArray()), "store unchanged");
            Check.True(!fixture.Store.Calls.Contains("install"), "nothing installed");
            Check.Contains(fixture.Log.All(), "ERROR 2000", "log");
            Check.Contains(fixture.Log.All(), "(connection)", "error kind in the log");

            Fixture noBundle = new Fixture(DateTime.UtcNow.AddDays(-80), DateTime.UtcNow.AddDays(10), true);
            Check.Equal(RenewalRunner.ExitConfig, noBundle.Run(Config("30d", "/nonexistent/ca.pem"), false, false), "unreadable CA bundle");
            Check.Contains(noBundle.Log.All(), "ERROR 2002", "config error log");
        }

        [Test]
        public static void IssuedCertificatesAreVerified()
        {
            TrustBundle trust = new TrustBundle(new X509Certificate2[] { new X509Certificate2(Pki.CertificateDer) });
            byte[] current = Leaf(DateTime.UtcNow.AddDays(-80), DateTime.UtcNow.AddDays(10));
            CertFacts facts = CertFacts.Parse(current);
            byte[] spki = TestPki.Spki(leafKey);
            List<byte[]> sans = TestPki.Leaf(new string[] { "web01.example.test", "*.apps.example.test" }, new string[] { "192.0.2.7", "2001:db8::7" });
            byte[] good = Pki.Issue(LeafName, spki, DateTime.UtcNow.AddMinutes(-1), DateTime.UtcNow.AddDays(90), sans);
            Check.Bytes(good, RenewalRunner.Verify(new List<byte[]> { Pki.CertificateDer, good }, spki, facts, trust), "a good answer");

            RSA other = TestKeys.Next();
            byte[] otherKey = Pki.Issue(LeafName, TestPki.Spki(other), DateTime.UtcNow, DateTime.UtcNow.AddDays(90), sans);
            Check.Contains(Check.Kind(EstErrorKind.Verification, delegate { RenewalRunner.Verify(new List<byte[]> { otherKey }, spki, facts, trust); }, "another key").Message,
                "no certificate for the key", "message");
            byte[] otherName = Pki.Issue(TestPki.NameOf(new string[] { "CN", "intruder" }), spki, DateTime.UtcNow, DateTime.UtcNow.AddDays(90), sans);
            Check.Contains(Check.Kind(EstErrorKind.Verification, delegate { RenewalRunner.Verify(new List<byte[]> { otherName }, spki, facts, trust); }, "another subject").Message,
                "names CN=intruder", "message");
            byte[] fewerNames = Pki.Issue(LeafName, spki, DateTime.UtcNow, DateTime.UtcNow.AddDays(90), TestPki.Leaf(new string[] { "web01.example.test" }, new string[0]));
            Check.Contains(Check.Kind(EstErrorKind.Verification, delegate { RenewalRunner.Verify(new List<byte[]> { fewerNames }, spki, facts, trust); }, "names dropped").Message,
                "lacks the subjectAltName DNS:*.apps.example.test, IP:192.0.2.7, IP:2001:db8::7", "message");
            TestPki rogue = new TestPki("Windows Test Root CA");
            byte[] untrusted = rogue.Issue(LeafName, spki, DateTime.UtcNow, DateTime.UtcNow.AddDays(90), sans);
            Check.Contains(Check.Kind(EstErrorKind.Verification, delegate { RenewalRunner.Verify(new List<byte[]> { untrusted, rogue.CertificateDer }, spki, facts, trust); }, "another CA").Message,
                "not trusted", "message");
        }

        [Test]
        public static void AnIntermediateInTheBundleIsAnAnchor()
        {
            RSA intermediateKey = TestKeys.Next();
            byte[] intermediateName = TestPki.NameOf(new string[] { "CN", "Windows Test Issuing CA" });
            byte[] intermediate = Pki.Issue(intermediateName, TestPki.Spki(intermediateKey), DateTime.UtcNow.AddDays(-1), DateTime.UtcNow.AddYears(1), TestPki.Ca());
            byte[] leaf = TestPki.Issue(LeafName, TestPki.Spki(leafKey), DateTime.UtcNow.AddDays(-1), DateTime.UtcNow.AddDays(30),
                TestPki.Leaf(new string[] { "web01.example.test" }, new string[0]), intermediateName, intermediateKey);
            X509Certificate2 cert = new X509Certificate2(leaf);
            X509Certificate2 issuing = new X509Certificate2(intermediate);
            Check.Equal(null, new TrustBundle(new X509Certificate2[] { issuing }).Verify(cert, new X509Certificate2[0]), "pinned intermediate");
            Check.Equal(null, new TrustBundle(new X509Certificate2[] { new X509Certificate2(Pki.CertificateDer) }).Verify(cert, new X509Certificate2[] { issuing }), "root with the intermediate sent");
            Check.Contains(new TrustBundle(new X509Certificate2[] { new X509Certificate2(Pki.CertificateDer) }).Verify(cert, new X509Certificate2[0]),
                "does not chain to a CA of the bundle", "root without the intermediate");
        }

        [Test]
        public static void CertificateStoreOfMonoWithoutKeys()
        {
            // Mono keeps CurrentUser certificates under $HOME/.config/.mono (the wrapper points HOME into
            // PKI_EST_OUT), without their private keys: the key paths of the store run on Windows only.
            Check.True(Environment.GetEnvironmentVariable("HOME").StartsWith(Env.Get("PKI_EST_OUT"), StringComparison.Ordinal), "HOME is a test directory");
            X509StoreCertificateStore store = new X509StoreCertificateStore(X509StoreCertificateStore.ParseLocation("currentuser"), "My");
            byte[] older = Leaf(DateTime.UtcNow.AddDays(-80), DateTime.UtcNow.AddDays(10));
            byte[] newer = Leaf(DateTime.UtcNow.AddDays(-1), DateTime.UtcNow.AddDays(90));
            string olderThumbprint = CertFacts.Parse(older).Thumbprint;
            string newerThumbprint = CertFacts.Parse(newer).Thumbprint;
            Check.True(store.Import(new X509Certificate2(older)), "imported");
            Check.True(!store.Import(new X509Certificate2(older)), "imported once only");
            store.Import(new X509Certificate2(newer));
            string subject = @"CN=web01.example.test, O=Example\, Inc., C=DE";
            Check.Equal(2, store.FindAll(subject).Count, "both match the subject");
            StoredCertificate current = store.Find(subject, null);
            Check.Equal(newerThumbprint, current.Facts.Thumbprint, "the latest notAfter is the current one");
            Check.True(!current.HasPrivateKey && current.KeyProvider == null, "no key");
            Check.Equal(olderThumbprint, store.FindAll(olderThumbprint.ToLowerInvariant()).Single().Facts.Thumbprint, "by thumbprint");
            Check.Equal(newerThumbprint, store.Find(olderThumbprint, null).Facts.Thumbprint, "a thumbprint leads to the current certificate of its subject");
            store.Remove(String.Join(" ", Enumerable.Range(0, 20).Select(i => newerThumbprint.Substring(2 * i, 2)).ToArray()), false);
            Check.True(!store.Contains(newerThumbprint) && store.Contains(olderThumbprint), "only the named one removed");
            Check.Kind(EstErrorKind.InvalidInput, delegate { store.Remove("ABC", false); }, "not a thumbprint");
            Check.Throws<EstException>(delegate { X509StoreCertificateStore.ParseLocation("Machine"); }, "unknown location");
        }

        [Test]
        public static void EntryPointRefusesBadInput()
        {
            Check.Equal(RenewalRunner.ExitConfig, PkiEstRenew.Main(new string[] { "--bogus" }), "unknown argument");
            Check.Equal(RenewalRunner.ExitConfig, PkiEstRenew.Main(new string[] { "--config", "/nonexistent/renewal.json" }), "missing config");
            string config = Env.Out("bad_renewal.json");
            File.WriteAllText(config, "{\"url\": \"https://est.example.test\", \"ca_path\": \"ca.pem\"}");
            Check.Equal(RenewalRunner.ExitConfig, PkiEstRenew.Main(new string[] { "--config", config, "--check" }), "incomplete config");
        }
    }

    /// <summary>A recorded HTTP answer (tests/unit/fixtures/*.bin): status line, headers, blank line, body.</summary>
    public sealed class HttpRecording
    {
        public int Status;
        public readonly Dictionary<string, string> Headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        public byte[] Body;

        public static HttpRecording Read(string name)
        {
            byte[] data = File.ReadAllBytes(Path.Combine(Env.Get("PKI_EST_FIXTURES"), name));
            string text = Encoding.GetEncoding("ISO-8859-1").GetString(data);
            int crlf = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            int lf = text.IndexOf("\n\n", StringComparison.Ordinal);
            int end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf + 2;
            HttpRecording recording = new HttpRecording();
            string[] lines = text.Substring(0, end).Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToArray();
            recording.Status = Int32.Parse(lines[0].Split(' ')[1]);
            foreach (string line in lines.Skip(1))
                recording.Headers[line.Substring(0, line.IndexOf(':'))] = line.Substring(line.IndexOf(':') + 1).Trim();
            recording.Body = data.Skip(end).ToArray();
            return recording;
        }

        public EstAnswer Answer()
        {
            string type;
            string retryAfter;
            Headers.TryGetValue("Content-Type", out type);
            Headers.TryGetValue("Retry-After", out retryAfter);
            return new EstAnswer(Status, type, retryAfter, Body, "https://est.example.test/.well-known/est/recorded");
        }
    }

    /// <summary>Scenarios against the lab EST server (RSA keys) the pytest wrapper runs; it checks the lab's request log.</summary>
    public static class LabTests
    {
        private const string ClientName = "win-client.example.test";
        private const string FriendlyName = "pki.est win-client";

        private static EstClientOptions Options()
        {
            EstClientOptions options = new EstClientOptions();
            options.Url = Env.Get("PKI_EST_LAB_URL");
            options.Trust = TrustBundle.Load(Env.Get("PKI_EST_LAB_CA"));
            options.Username = Env.Get("PKI_EST_LAB_USER");
            options.Password = Env.Get("PKI_EST_LAB_PASSWORD");
            options.TimeoutSeconds = 10;
            return options;
        }

        private static byte[] ClientCsr(RSA key)
        {
            return new Pkcs10Builder().AddSubject("O", "pki.est tests").AddSubject("CN", ClientName)
                .AddDns(ClientName).AddIp("127.0.0.1").AddKeyUsage("digitalSignature").AddKeyUsage("keyEncipherment")
                .AddExtendedKeyUsage("clientAuth").Build(new RsaCsrSigner(key));
        }

        /// <summary>Enrolls a new RSA key with HTTP Basic; the store gets the certificate with its key and FriendlyName.</summary>
        private static StoredCertificate EnrollInto(FakeStore store, RSA key)
        {
            EnrollResult result = new EstClient(Options()).SimpleEnroll(ClientCsr(key));
            Check.True(!result.IsPending, "enrollment is not pending");
            byte[] issued = Pkcs7.FindIssued(result.Certificates, TestPki.Spki(key));
            Check.True(issued != null, "the answer holds the certificate for the key");
            return store.Add(issued, key, FriendlyName);
        }

        private static RenewalConfig Config(string renewBefore, bool rekey)
        {
            RenewalConfig config = new RenewalConfig();
            config.Url = Env.Get("PKI_EST_LAB_URL");
            config.CaPath = Env.Get("PKI_EST_LAB_CA");
            config.Certificate = "CN=" + ClientName + ",O=pki.est tests";
            config.RenewBefore = RenewWindow.Parse(renewBefore);
            config.Rekey = rekey;
            config.TimeoutSeconds = 10;
            return config;
        }

        private static string Thumbprints(FakeStore store)
        {
            return String.Join(",", store.Thumbprints().ToArray());
        }

        [Lab("cacerts")]
        public static void CaCerts()
        {
            byte[] ca = Pem.ReadCertificates(File.ReadAllBytes(Env.Get("PKI_EST_LAB_CA"))).Single();
            EstClientOptions options = Options();
            options.Username = null;
            EstClient client = new EstClient(options);
            List<byte[]> certs = client.GetCaCerts();
            Check.True(certs.Any(c => Der.BytesEqual(c, ca)), "the lab CA is in /cacerts");
            // SignedCms (Mono has it for RSA) reads the same certificates from the same answer.
            EstAnswer raw = client.Send("GET", "cacerts", null, null);
            Check.Equal("application/pkcs7-mime", EstAnswers.MediaType(raw.ContentType), "media type");
            SignedCms cms = new SignedCms();
            cms.Decode(Pem.DecodeBody(raw.Body, "cacerts"));
            Check.Equal(String.Join(",", certs.Select(c => CertFacts.Parse(c).Thumbprint).ToArray()),
                String.Join(",", cms.Certificates.Cast<X509Certificate2>().Select(c => c.Thumbprint).ToArray()), "SignedCms agrees");
            // The lab's certificate names localhost too.
            options.Url = Env.Get("PKI_EST_LAB_URL").Replace("127.0.0.1", "localhost");
            Check.True(new EstClient(options).GetCaCerts().Count > 0, "over localhost");
        }

        [Lab("renew")]
        public static void EnrollThenRenew()
        {
            FakeStore store = new FakeStore();
            FakeKeyFactory keys = new FakeKeyFactory(store);
            RSA key = TestKeys.Next();
            StoredCertificate enrolled = EnrollInto(store, key);
            File.WriteAllText(Env.Out("enrolled.pem"), Pem.Encode("CERTIFICATE", enrolled.Facts.Encoded));

            // Not due: no request (the wrapper counts the lab's requests).
            MemoryLog log = new MemoryLog();
            Check.Equal(RenewalRunner.ExitOk, new RenewalRunner(Config("1d", false), store, keys, log).Run(false, false), "not due");
            Check.Contains(log.All(), "nothing to do", "not-due log");
            Check.Equal(enrolled.Facts.Thumbprint, Thumbprints(store), "store after not due");

            // Due (the whole lifetime is the window): re-enrollment over mutual TLS with the same key.
            NextSecond();
            log = new MemoryLog();
            RenewalRunner runner = new RenewalRunner(Config("100%", false), store, keys, log);
            Check.Equal(RenewalRunner.ExitOk, runner.Run(false, false), "renewal: " + log.All());
            Check.Contains(log.All(), "INFO 1001", "renewed log");
            StoredCertificate renewed = Current(store);
            Check.Equal(runner.InstalledThumbprint, renewed.Facts.Thumbprint, "the new certificate is the current one");
            Check.Equal(enrolled.Facts.Thumbprint + "," + renewed.Facts.Thumbprint, Thumbprints(store), "the old one stays");
            Check.Bytes(enrolled.Facts.SubjectPublicKeyInfo, renewed.Facts.SubjectPublicKeyInfo, "same key");
            Check.True(renewed.Certificate.HasPrivateKey, "installed with its key");
            Check.Equal(FriendlyName, renewed.FriendlyName, "the friendly name carried over");
            File.WriteAllText(Env.Out("renewed.pem"), Pem.Encode("CERTIFICATE", renewed.Facts.Encoded));

            // Rekey, the certificate found by its friendly name: a new key named after the current certificate.
            NextSecond();
            log = new MemoryLog();
            RenewalConfig byName = Config("100%", true);
            byName.Certificate = null;
            byName.FriendlyName = FriendlyName;
            runner = new RenewalRunner(byName, store, keys, log);
            Check.Equal(RenewalRunner.ExitOk, runner.Run(false, false), "rekey: " + log.All());
            Check.Equal(RenewalRunner.PendingKeyPrefix + renewed.Facts.Thumbprint, keys.Created.Single(), "the new key's name");
            StoredCertificate rekeyed = Current(store);
            Check.Equal(runner.InstalledThumbprint, rekeyed.Facts.Thumbprint, "the rekeyed certificate is the current one");
            Check.Equal(3, store.Thumbprints().Count, "the earlier ones stay");
            Check.True(!Der.BytesEqual(renewed.Facts.SubjectPublicKeyInfo, rekeyed.Facts.SubjectPublicKeyInfo), "a new key");
            Check.Contains(log.All(), ", new key", "rekey log");
            File.WriteAllText(Env.Out("rekeyed.pem"), Pem.Encode("CERTIFICATE", rekeyed.Facts.Encoded));
        }

        // The lab issues for a fixed lifetime from now: a second later, the next certificate's notAfter
        // (whole seconds) is later, and it is the current one.
        private static void NextSecond()
        {
            Thread.Sleep(1100);
        }

        private static StoredCertificate Current(FakeStore store)
        {
            return StoredCertificate.Select(store.Certificates(), Config("1d", false).Certificate, null);
        }

        [Lab("pending")]
        public static void PendingAnswers()
        {
            RSA key = TestKeys.Next();
            byte[] csr = ClientCsr(key);
            FakeStore store = new FakeStore();
            EstClient client = new EstClient(Options());
            EnrollResult first = client.SimpleEnroll(csr);
            Check.True(first.IsPending, "the first answer is 202");
            Check.Equal(1, first.RetryAfterSeconds, "Retry-After");
            Thread.Sleep(first.RetryAfterSeconds * 1000);
            EnrollResult second = client.SimpleEnroll(csr);
            Check.True(!second.IsPending, "the second answer has the certificate");
            store.Add(Pkcs7.FindIssued(second.Certificates, TestPki.Spki(key)), key, null);
            string before = Thumbprints(store);
            MemoryLog log = new MemoryLog();
            int exit = new RenewalRunner(Config("100%", false), store, new FakeKeyFactory(store), log).Run(false, false);
            Check.Equal(RenewalRunner.ExitPending, exit, "a pending re-enrollment: " + log.All());
            Check.Equal(before, Thumbprints(store), "store unchanged");
            Check.Contains(log.All(), "WARNING 1002", "pending log");
            Check.Contains(log.All(), "(Retry-After 1s)", "pending log");
        }

        /// <summary>The wrapper made the lab answer /simplereenroll wrongly; argument: the error kind expected.</summary>
        [Lab("fault")]
        public static void FaultyReenrollmentChangesNothing(string[] arguments)
        {
            FakeStore store = new FakeStore();
            FakeKeyFactory keys = new FakeKeyFactory(store);
            EnrollInto(store, TestKeys.Next());
            string before = Thumbprints(store);
            MemoryLog log = new MemoryLog();
            int exit = new RenewalRunner(Config("100%", true), store, keys, log).Run(false, false);
            Check.Equal(RenewalRunner.ExitFailed, exit, "exit code: " + log.All());
            Check.Equal(before, Thumbprints(store), "store unchanged");
            Check.True(!store.Calls.Contains("install"), "nothing installed");
            Check.Contains(log.All(), "ERROR 2000", "log");
            Check.Contains(log.All(), "(" + arguments[0] + ")", "error kind in the log");
        }

        /// <summary>A lab client with Options() changed by change.</summary>
        private static EstClient Client(Action<EstClientOptions> change)
        {
            EstClientOptions options = Options();
            change(options);
            return new EstClient(options);
        }

        [Lab("errors")]
        public static void ErrorKinds()
        {
            byte[] csr = ClientCsr(TestKeys.Next());
            EstClient client = new EstClient(Options());

            // The wrapper set: /cacerts answers 500 once, /simpleenroll answers a body that is no PKCS#7 once.
            EstException e = Check.Kind(EstErrorKind.Http, delegate { client.GetCaCerts(); }, "HTTP 500");
            Check.Equal(500, e.Status, "status");
            Check.Contains(e.Message, "injected fault", "the server's words");
            Check.Kind(EstErrorKind.BadResponse, delegate { client.SimpleEnroll(csr); }, "not PKCS#7");
            byte[] broken = (byte[])csr.Clone();
            broken[broken.Length - 5] ^= 0xFF;
            Check.Equal(400, Check.Kind(EstErrorKind.BadRequest, delegate { client.SimpleEnroll(broken); }, "bad CSR signature").Status, "status");
            Check.Equal(403, Check.Kind(EstErrorKind.Forbidden, delegate { client.SimpleReenroll(csr); }, "reenroll without a certificate").Status, "status");
            EstClient wrongPassword = Client(o => o.Password = "wrong");
            Check.Equal(401, Check.Kind(EstErrorKind.AuthRequired, delegate { wrongPassword.SimpleEnroll(csr); }, "wrong password").Status, "status");
            EstClient unknownLabel = Client(o => o.CaLabel = "nosuch");
            Check.Equal(404, Check.Kind(EstErrorKind.NotSupported, delegate { unknownLabel.GetCaCerts(); }, "unknown label").Status, "status");

            // Nothing below reaches the lab as an HTTP request.
            EstClient untrusted = Client(o => o.Trust = TrustBundle.Load(Env.Get("PKI_EST_OTHER_CA")));
            Check.Contains(Check.Kind(EstErrorKind.Tls, delegate { untrusted.GetCaCerts(); }, "untrusted server").Message,
                "does not chain to a CA of the bundle", "message");
            EstClient wrongName = Client(o => o.Url = Env.Get("PKI_EST_WRONG_NAME_URL"));
            Check.Contains(Check.Kind(EstErrorKind.Tls, delegate { wrongName.GetCaCerts(); }, "wrong host name").Message,
                "is not valid for 127.0.0.2", "message");
            EstClient silent = Client(o => { o.Url = Env.Get("PKI_EST_SILENT_URL"); o.TimeoutSeconds = 1; });
            Check.Contains(Check.Kind(EstErrorKind.Connection, delegate { silent.GetCaCerts(); }, "silent server").Message, "timed out", "message");
            EstClient closed = Client(o => o.Url = Env.ClosedPortUrl());
            Check.Kind(EstErrorKind.Connection, delegate { closed.GetCaCerts(); }, "closed port");
        }
    }
}
