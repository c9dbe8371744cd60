// Copyright: (c) 2026, pki.est developers
// GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
//
// Stand-ins for what only Windows has (certificate store, CNG keys, event log), and a small
// test PKI whose certificates are written with the DER writer of EstWin.cs and signed with RSA
// (the key type Mono can use).

using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using ansible_collections.pki.est.plugins.module_utils.EstWin;

namespace PkiEst.Tests
{
    /// <summary>Keeps entries as "LEVEL EVENTID message" lines.</summary>
    public sealed class MemoryLog : IRenewalLog
    {
        public readonly List<string> Entries = new List<string>();

        public void Info(int eventId, string message)
        {
            Entries.Add("INFO " + eventId + " " + message);
        }

        public void Warning(int eventId, string message)
        {
            Entries.Add("WARNING " + eventId + " " + message);
        }

        public void Error(int eventId, string message)
        {
            Entries.Add("ERROR " + eventId + " " + message);
        }

        public string All()
        {
            return String.Join("\n", Entries.ToArray());
        }
    }

    /// <summary>An in-memory certificate store; certificates keep their RSA keys as the Windows store keeps key links.</summary>
    public sealed class FakeStore : ICertificateStore
    {
        private readonly List<StoredCertificate> certificates = new List<StoredCertificate>();
        public readonly Dictionary<string, AsymmetricAlgorithm> Keys = new Dictionary<string, AsymmetricAlgorithm>();
        public readonly List<string> Calls = new List<string>();

        /// <summary>Adds a certificate with its key (null: a certificate without private key) and friendly name (or null).</summary>
        public StoredCertificate Add(byte[] der, AsymmetricAlgorithm key, string friendlyName)
        {
            X509Certificate2 cert = new X509Certificate2(der);
            if (key != null)
            {
                cert = RSACertificateExtensions.CopyWithPrivateKey(cert, (RSA)key);
                Keys[cert.Thumbprint] = key;
            }
            // Kept here: Mono cannot set X509Certificate2.FriendlyName.
            StoredCertificate stored = new StoredCertificate(cert, friendlyName, key != null, key != null ? "fake provider" : null, null);
            certificates.Add(stored);
            return stored;
        }

        public List<StoredCertificate> Certificates()
        {
            Calls.Add("list");
            return new List<StoredCertificate>(certificates);
        }

        public string Install(byte[] issuedDer, KeyHandle key, string friendlyName)
        {
            Calls.Add("install");
            if (!key.Matches(issuedDer))
                throw new EstException(EstErrorKind.KeyConflict, "the certificate is not for the key");
            return Add(issuedDer, key.Key, friendlyName).Facts.Thumbprint;
        }

        public List<string> Thumbprints()
        {
            return certificates.Select(c => c.Facts.Thumbprint).ToList();
        }
    }

    /// <summary>RSA keys in memory, named like persisted CNG keys; remembers which names it created.</summary>
    public sealed class FakeKeyFactory : IKeyFactory
    {
        private readonly FakeStore store;
        public readonly Dictionary<string, RSA> Pending = new Dictionary<string, RSA>();
        public readonly List<string> Created = new List<string>();

        public FakeKeyFactory(FakeStore store)
        {
            this.store = store;
        }

        public KeyHandle CreatePendingKey(string name, string keyType)
        {
            RSA key;
            if (Pending.TryGetValue(name, out key))
                return new KeyHandle(name, key, false);
            if (keyType != "rsa-2048")
                throw new EstException(EstErrorKind.KeyStore, "the fake key factory has 2048-bit RSA keys only, not " + keyType);
            key = TestKeys.Next();
            Pending[name] = key;
            Created.Add(name);
            return new KeyHandle(name, key, true);
        }

        public KeyHandle UseExistingKey(StoredCertificate certificate)
        {
            AsymmetricAlgorithm key;
            if (!store.Keys.TryGetValue(certificate.Facts.Thumbprint, out key))
                throw new EstException(EstErrorKind.KeyStore, "no key for " + certificate.Facts.Thumbprint);
            return new KeyHandle(null, key, false);
        }
    }

    /// <summary>
    /// 2048-bit RSA keys the wrapper made with Python and wrote to vectors.json ("rsa_keys"):
    /// Mono's RSACryptoServiceProvider takes seconds to generate one.
    /// </summary>
    public static class TestKeys
    {
        private static List<object> pool;
        private static int next;

        public static RSA Next()
        {
            if (pool == null)
                pool = (List<object>)((Dictionary<string, object>)Env.Vectors())["rsa_keys"];
            if (next >= pool.Count)
                throw new CheckFailed("vectors.json holds only " + pool.Count + " RSA keys");
            Dictionary<string, object> numbers = (Dictionary<string, object>)pool[next++];
            RSAParameters parameters = new RSAParameters();
            parameters.Modulus = Der.FromHex((string)numbers["n"]);
            parameters.Exponent = Der.FromHex((string)numbers["e"]);
            parameters.D = Der.FromHex((string)numbers["d"]);
            parameters.P = Der.FromHex((string)numbers["p"]);
            parameters.Q = Der.FromHex((string)numbers["q"]);
            parameters.DP = Der.FromHex((string)numbers["dp"]);
            parameters.DQ = Der.FromHex((string)numbers["dq"]);
            parameters.InverseQ = Der.FromHex((string)numbers["qi"]);
            RSA key = new RSACryptoServiceProvider();
            key.ImportParameters(parameters);
            return key;
        }
    }

    /// <summary>A CA and the certificates it issues, DER built here, RSA-signed.</summary>
    public sealed class TestPki
    {
        private static readonly byte[] Sha256WithRsa = Der.Sequence(Der.Oid("1.2.840.113549.1.1.11"), Der.Null());
        private static long serial = 0x1234ABCD;

        public TestPki(string commonName)
        {
            Key = TestKeys.Next();
            Name = NameOf(new string[] { "O", "pki.est tests", "CN", commonName });
            DateTime now = DateTime.UtcNow;
            CertificateDer = Issue(Name, Spki(Key), now.AddDays(-1), now.AddYears(5), Ca(), Name, Key);
        }

        public RSA Key { get; private set; }
        public byte[] Name { get; private set; }
        public byte[] CertificateDer { get; private set; }

        public static byte[] Spki(RSA key)
        {
            RSAParameters parameters = key.ExportParameters(false);
            return Pkcs10Builder.RsaSpki(parameters.Modulus, parameters.Exponent);
        }

        /// <summary>A Name from pairs: type, value, type, value ... in DER order.</summary>
        public static byte[] NameOf(string[] pairs)
        {
            List<byte[]> rdns = new List<byte[]>();
            for (int i = 0; i < pairs.Length; i += 2)
            {
                byte[] value = pairs[i] == "C" ? Der.PrintableString(pairs[i + 1]) : Der.Utf8String(pairs[i + 1]);
                rdns.Add(Der.SetOf(new byte[][] { Der.Sequence(Der.Oid(CertFacts.AttributeOid(pairs[i])), value) }));
            }
            return Der.SequenceOf(rdns);
        }

        public static byte[] Extension(string oid, bool critical, byte[] value)
        {
            return critical ? Der.Sequence(Der.Oid(oid), Der.Boolean(true), Der.OctetString(value)) : Der.Sequence(Der.Oid(oid), Der.OctetString(value));
        }

        public static List<byte[]> Ca()
        {
            return new List<byte[]> { Extension(CertFacts.BasicConstraintsOid, true, Der.Sequence(Der.Boolean(true))) };
        }

        /// <summary>subjectAltName DNS and IP names, keyUsage digitalSignature + keyEncipherment, EKU serverAuth + clientAuth.</summary>
        public static List<byte[]> Leaf(string[] dns, string[] ips)
        {
            List<byte[]> names = new List<byte[]>();
            foreach (string name in dns)
                names.Add(Der.Encode(Der.ContextTag(2, false), Encoding.ASCII.GetBytes(name)));
            foreach (string ip in ips)
                names.Add(Der.Encode(Der.ContextTag(7, false), System.Net.IPAddress.Parse(ip).GetAddressBytes()));
            return new List<byte[]>
            {
                Extension(CertFacts.BasicConstraintsOid, true, Der.Sequence()),
                Extension(CertFacts.KeyUsageOid, true, Der.NamedBits(new int[] { 0, 2 })),
                Extension(CertFacts.ExtendedKeyUsageOid, false, Der.Sequence(Der.Oid("1.3.6.1.5.5.7.3.1"), Der.Oid("1.3.6.1.5.5.7.3.2"))),
                Extension(CertFacts.SubjectAltNameOid, false, Der.SequenceOf(names)),
            };
        }

        /// <summary>A certificate for spki, signed by this CA.</summary>
        public byte[] Issue(byte[] subject, byte[] spki, DateTime notBefore, DateTime notAfter, List<byte[]> extensions)
        {
            return Issue(subject, spki, notBefore, notAfter, extensions, Name, Key);
        }

        public static byte[] Issue(byte[] subject, byte[] spki, DateTime notBefore, DateTime notAfter, List<byte[]> extensions, byte[] issuer, RSA issuerKey)
        {
            byte[] tbs = Der.Sequence(
                Der.Explicit(0, Der.Integer(2)),
                Der.Integer(serial++),
                Sha256WithRsa,
                issuer,
                Der.Sequence(Time(notBefore), Time(notAfter)),
                subject,
                spki,
                Der.Explicit(3, Der.SequenceOf(extensions)));
            byte[] signature = issuerKey.SignData(tbs, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            return Der.Sequence(tbs, Sha256WithRsa, Der.BitString(signature));
        }

        // UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5).
        private static byte[] Time(DateTime utc)
        {
            if (utc.Year < 2050)
                return Der.Encode(DerTag.UtcTime, Encoding.ASCII.GetBytes(utc.ToString("yyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture) + "Z"));
            return Der.Encode(DerTag.GeneralizedTime, Encoding.ASCII.GetBytes(utc.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture) + "Z"));
        }
    }
}
