// Copyright: (c) 2026, pki.est developers
// GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
//
// The EST client of Windows hosts (RFC 7030, RFC 8951): encodings, certificate facts, PKCS#10
// requests, the HTTP client and the renewal the scheduled task runs. Pure logic only: what only
// Windows can do (CNG key storage providers, the certificate store, the event log) sits behind
// the interfaces at the end of this file and lives in EstWinPlatform.cs.
//
// It compiles with the C# 5 compiler of Windows PowerShell 5.1 (Add-Type, Ansible's
// Add-CSharpType, which treats warnings as errors) and with Mono's mcs -langversion:5, the
// compiler tests/integration/test_windows_csharp.py runs. Runtime: .NET Framework 4.7.2 or later
// (ECDsa.ExportParameters needs 4.7, CopyWithPrivateKey in EstWinPlatform.cs 4.7.2); it references
// System.dll and System.Core.dll only.

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;

namespace ansible_collections.pki.est.plugins.module_utils.EstWin
{
    // ---------------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------------

    /// <summary>The error kinds of the Python engine (plugins/module_utils/errors.py) that the Windows client can meet.</summary>
    public static class EstErrorKind
    {
        public const string Tls = "tls";
        public const string Connection = "connection";
        public const string Http = "http";
        public const string AuthRequired = "auth_required";
        public const string Forbidden = "forbidden";
        public const string UnexpectedContentType = "unexpected_content_type";
        public const string BadResponse = "bad_response";
        public const string Pending = "pending";
        public const string NotSupported = "not_supported";
        public const string BadRequest = "bad_request";
        public const string InvalidInput = "invalid_input";
        public const string KeyStore = "key_store";
        public const string HostState = "host_state";
        public const string Verification = "verification";
        public const string KeyConflict = "key_conflict";
    }

    /// <summary>An EST operation failed; Kind is one of <see cref="EstErrorKind"/>, Status the HTTP status (0 without one).</summary>
    public class EstException : Exception
    {
        public EstException(string kind, string message) : this(kind, message, 0, null, null) { }

        public EstException(string kind, string message, int status, string serverText, Exception inner)
            : base(message, inner)
        {
            Kind = kind;
            Status = status;
            ServerText = serverText;
        }

        public string Kind { get; private set; }
        public int Status { get; private set; }
        /// <summary>The server's own words (short, printable), or null.</summary>
        public string ServerText { get; private set; }
    }

    // ---------------------------------------------------------------------------------------------
    // DER
    // ---------------------------------------------------------------------------------------------

    /// <summary>Tag bytes used here (X.690). Context tags are built with <see cref="Der.ContextTag"/>.</summary>
    public static class DerTag
    {
        public const byte Boolean = 0x01;
        public const byte Integer = 0x02;
        public const byte BitString = 0x03;
        public const byte OctetString = 0x04;
        public const byte Null = 0x05;
        public const byte ObjectIdentifier = 0x06;
        public const byte Utf8String = 0x0C;
        public const byte PrintableString = 0x13;
        public const byte T61String = 0x14;
        public const byte Ia5String = 0x16;
        public const byte UtcTime = 0x17;
        public const byte GeneralizedTime = 0x18;
        public const byte UniversalString = 0x1C;
        public const byte BmpString = 0x1E;
        public const byte Sequence = 0x30;
        public const byte Set = 0x31;
    }

    /// <summary>
    /// One element read from BER/DER bytes: a view into the source array, nothing copied until asked.
    /// Indefinite lengths (BER) are read too: some servers send their PKCS#7 that way.
    /// </summary>
    public sealed class DerNode
    {
        private const int MaxDepth = 40;

        private readonly byte[] source;
        private readonly int depth;

        private DerNode(byte[] source, int start, byte tag, int contentStart, int contentLength, bool indefinite, int depth)
        {
            this.source = source;
            this.depth = depth;
            Start = start;
            Tag = tag;
            ContentStart = contentStart;
            ContentLength = contentLength;
            Indefinite = indefinite;
        }

        public byte Tag { get; private set; }
        public int Start { get; private set; }
        public int ContentStart { get; private set; }
        public int ContentLength { get; private set; }
        public bool Indefinite { get; private set; }

        /// <summary>Offset just past this element (past the end-of-contents octets of an indefinite length).</summary>
        public int End { get { return ContentStart + ContentLength + (Indefinite ? 2 : 0); } }

        public bool IsConstructed { get { return (Tag & 0x20) != 0; } }

        /// <summary>Reads the element at offset, which must end at or before limit.</summary>
        public static DerNode Read(byte[] data, int offset, int limit)
        {
            return Read(data, offset, limit, 0);
        }

        private static DerNode Read(byte[] data, int offset, int limit, int depth)
        {
            if (depth > MaxDepth)
                throw new FormatException("DER: nested deeper than " + MaxDepth + " levels");
            if (offset + 2 > limit)
                throw new FormatException(String.Format("DER: element at offset {0} is cut off", offset));
            byte tag = data[offset];
            if ((tag & 0x1F) == 0x1F)
                throw new FormatException(String.Format("DER: multi-byte tag at offset {0} is not supported", offset));
            int pos = offset + 1;
            int first = data[pos++];
            if (first == 0x80)
            {
                if ((tag & 0x20) == 0)
                    throw new FormatException(String.Format("DER: indefinite length on a primitive element at offset {0}", offset));
                // The content ends at the end-of-contents octets (00 00) that follow the last child.
                int cursor = pos;
                while (true)
                {
                    if (cursor + 2 > limit)
                        throw new FormatException(String.Format("DER: indefinite-length element at offset {0} has no end", offset));
                    if (data[cursor] == 0 && data[cursor + 1] == 0)
                        return new DerNode(data, offset, tag, pos, cursor - pos, true, depth);
                    cursor = Read(data, cursor, limit, depth + 1).End;
                }
            }
            long length;
            if (first < 0x80)
            {
                length = first;
            }
            else
            {
                int count = first & 0x7F;
                if (count > 4 || pos + count > limit)
                    throw new FormatException(String.Format("DER: bad length at offset {0}", offset));
                length = 0;
                for (int i = 0; i < count; i++)
                    length = (length << 8) | data[pos++];
            }
            if (length > limit - pos)
                throw new FormatException(String.Format("DER: element at offset {0} claims {1} bytes, {2} are there", offset, length, limit - pos));
            return new DerNode(data, offset, tag, pos, (int)length, false, depth);
        }

        /// <summary>The elements inside a constructed element, in order.</summary>
        public List<DerNode> Children()
        {
            if (!IsConstructed)
                throw new FormatException(String.Format("DER: element 0x{0:X2} at offset {1} is not constructed", Tag, Start));
            List<DerNode> result = new List<DerNode>();
            int cursor = ContentStart;
            int end = ContentStart + ContentLength;
            while (cursor < end)
            {
                DerNode child = Read(source, cursor, end, depth + 1);
                result.Add(child);
                cursor = child.End;
            }
            return result;
        }

        /// <summary>Child number index, which must exist and carry the tag.</summary>
        public DerNode Child(int index, byte expectedTag)
        {
            List<DerNode> children = Children();
            if (index >= children.Count)
                throw new FormatException(String.Format("DER: element at offset {0} has no item {1}", Start, index));
            return children[index].Expect(expectedTag);
        }

        public DerNode Expect(byte expectedTag)
        {
            if (Tag != expectedTag)
                throw new FormatException(String.Format("DER: expected tag 0x{0:X2} at offset {1}, found 0x{2:X2}", expectedTag, Start, Tag));
            return this;
        }

        public byte[] Content()
        {
            byte[] result = new byte[ContentLength];
            Buffer.BlockCopy(source, ContentStart, result, 0, ContentLength);
            return result;
        }

        /// <summary>The whole element (tag, length, content) as it stands in the source.</summary>
        public byte[] Encoded()
        {
            byte[] result = new byte[End - Start];
            Buffer.BlockCopy(source, Start, result, 0, result.Length);
            return result;
        }

        public string ObjectIdentifier()
        {
            return Der.DecodeOid(Expect(DerTag.ObjectIdentifier).Content());
        }

        /// <summary>The bits of a BIT STRING whose unused-bits count is 0 (keys and signatures).</summary>
        public byte[] BitStringBytes()
        {
            byte[] content = Expect(DerTag.BitString).Content();
            if (content.Length == 0 || content[0] != 0)
                throw new FormatException(String.Format("DER: BIT STRING at offset {0} is not whole bytes", Start));
            byte[] result = new byte[content.Length - 1];
            Buffer.BlockCopy(content, 1, result, 0, result.Length);
            return result;
        }

        /// <summary>The text of a directory string (UTF8String, PrintableString, IA5String, BMPString, ...).</summary>
        public string Text()
        {
            byte[] content = Content();
            switch (Tag)
            {
                case DerTag.Utf8String:
                    try
                    {
                        return new UTF8Encoding(false, true).GetString(content);
                    }
                    catch (DecoderFallbackException)
                    {
                        throw new FormatException(String.Format("DER: UTF8String at offset {0} is not UTF-8", Start));
                    }
                case DerTag.BmpString:
                    return Encoding.BigEndianUnicode.GetString(content);
                case DerTag.UniversalString:
                    return new UTF32Encoding(true, false, true).GetString(content);
                case DerTag.PrintableString:
                case DerTag.Ia5String:
                case 0x12: // NumericString
                case 0x1A: // VisibleString
                case DerTag.T61String: // in practice Latin-1
                    return Encoding.GetEncoding("ISO-8859-1").GetString(content);
                default:
                    throw new FormatException(String.Format("DER: tag 0x{0:X2} at offset {1} is not a string", Tag, Start));
            }
        }

        /// <summary>UTCTime or GeneralizedTime as a UTC DateTime.</summary>
        public DateTime Time()
        {
            string text = Encoding.ASCII.GetString(Content());
            string[] formats;
            if (Tag == DerTag.UtcTime)
            {
                // RFC 5280 4.1.2.5.1: YY >= 50 is 19YY, else 20YY.
                if (text.Length < 2)
                    throw new FormatException("DER: bad UTCTime " + text);
                int year = Int32.Parse(text.Substring(0, 2), CultureInfo.InvariantCulture);
                text = (year >= 50 ? "19" : "20") + text;
                formats = new string[] { "yyyyMMddHHmmss'Z'", "yyyyMMddHHmm'Z'" };
            }
            else if (Tag == DerTag.GeneralizedTime)
            {
                formats = new string[] { "yyyyMMddHHmmss'Z'", "yyyyMMddHHmmss.FFFFFFF'Z'" };
            }
            else
            {
                throw new FormatException(String.Format("DER: tag 0x{0:X2} at offset {1} is not a time", Tag, Start));
            }
            DateTime value;
            if (!DateTime.TryParseExact(text, formats, CultureInfo.InvariantCulture,
                    DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out value))
                throw new FormatException("DER: bad time " + text);
            return DateTime.SpecifyKind(value, DateTimeKind.Utc);
        }
    }

    /// <summary>DER encoding helpers (X.690) and the entry point for reading.</summary>
    public static class Der
    {
        /// <summary>Reads data as exactly one element (trailing bytes are an error).</summary>
        public static DerNode Parse(byte[] data)
        {
            if (data == null || data.Length == 0)
                throw new FormatException("DER: no data");
            DerNode node = DerNode.Read(data, 0, data.Length);
            if (node.End != data.Length)
                throw new FormatException(String.Format("DER: {0} bytes after the element", data.Length - node.End));
            return node;
        }

        public static byte[] Encode(byte tag, byte[] content)
        {
            byte[] length = EncodeLength(content.Length);
            byte[] result = new byte[1 + length.Length + content.Length];
            result[0] = tag;
            Buffer.BlockCopy(length, 0, result, 1, length.Length);
            Buffer.BlockCopy(content, 0, result, 1 + length.Length, content.Length);
            return result;
        }

        private static byte[] EncodeLength(int length)
        {
            if (length < 0x80)
                return new byte[] { (byte)length };
            List<byte> bytes = new List<byte>();
            for (int value = length; value > 0; value >>= 8)
                bytes.Insert(0, (byte)(value & 0xFF));
            bytes.Insert(0, (byte)(0x80 | bytes.Count));
            return bytes.ToArray();
        }

        public static byte[] Concat(IEnumerable<byte[]> parts)
        {
            MemoryStream stream = new MemoryStream();
            foreach (byte[] part in parts)
                stream.Write(part, 0, part.Length);
            return stream.ToArray();
        }

        public static byte[] Sequence(params byte[][] items)
        {
            return Encode(DerTag.Sequence, Concat(items));
        }

        public static byte[] SequenceOf(IEnumerable<byte[]> items)
        {
            return Encode(DerTag.Sequence, Concat(items));
        }

        /// <summary>A SET OF: DER sorts the encoded members (X.690 11.6).</summary>
        public static byte[] SetOf(IEnumerable<byte[]> items)
        {
            return Encode(DerTag.Set, Concat(SortedForSet(items)));
        }

        /// <summary>The members of a DER SET OF in their canonical order.</summary>
        public static List<byte[]> SortedForSet(IEnumerable<byte[]> items)
        {
            List<byte[]> sorted = new List<byte[]>(items);
            sorted.Sort(CompareOctets);
            return sorted;
        }

        private static int CompareOctets(byte[] a, byte[] b)
        {
            int common = Math.Min(a.Length, b.Length);
            for (int i = 0; i < common; i++)
            {
                if (a[i] != b[i])
                    return a[i] - b[i];
            }
            return a.Length - b.Length;
        }

        /// <summary>A positive INTEGER from unsigned big-endian bytes (leading zeros dropped, a 00 added before a high bit).</summary>
        public static byte[] UnsignedInteger(byte[] bigEndian)
        {
            int skip = 0;
            while (skip < bigEndian.Length - 1 && bigEndian[skip] == 0)
                skip++;
            bool pad = bigEndian.Length == 0 || (bigEndian[skip] & 0x80) != 0;
            byte[] content = new byte[(pad ? 1 : 0) + bigEndian.Length - skip];
            Buffer.BlockCopy(bigEndian, skip, content, pad ? 1 : 0, bigEndian.Length - skip);
            return Encode(DerTag.Integer, content);
        }

        public static byte[] Integer(long value)
        {
            List<byte> bytes = new List<byte>();
            long rest = value;
            do
            {
                bytes.Insert(0, (byte)(rest & 0xFF));
                rest >>= 8;
            }
            while (!(rest == 0 && (bytes[0] & 0x80) == 0) && !(rest == -1 && (bytes[0] & 0x80) != 0));
            return Encode(DerTag.Integer, bytes.ToArray());
        }

        public static byte[] Boolean(bool value)
        {
            return Encode(DerTag.Boolean, new byte[] { value ? (byte)0xFF : (byte)0x00 });
        }

        public static byte[] Null()
        {
            return new byte[] { DerTag.Null, 0x00 };
        }

        public static byte[] OctetString(byte[] value)
        {
            return Encode(DerTag.OctetString, value);
        }

        /// <summary>A BIT STRING of whole bytes (unused bits 0).</summary>
        public static byte[] BitString(byte[] value)
        {
            byte[] content = new byte[value.Length + 1];
            Buffer.BlockCopy(value, 0, content, 1, value.Length);
            return Encode(DerTag.BitString, content);
        }

        /// <summary>
        /// A named-bit BIT STRING (keyUsage): bit 0 is the high bit of the first byte; DER drops
        /// trailing zero bits (X.690 11.2.2).
        /// </summary>
        public static byte[] NamedBits(IEnumerable<int> bits)
        {
            int highest = -1;
            foreach (int bit in bits)
                highest = Math.Max(highest, bit);
            if (highest < 0)
                return Encode(DerTag.BitString, new byte[] { 0 });
            byte[] value = new byte[highest / 8 + 1];
            foreach (int bit in bits)
                value[bit / 8] |= (byte)(0x80 >> (bit % 8));
            byte[] content = new byte[value.Length + 1];
            content[0] = (byte)(7 - highest % 8);
            Buffer.BlockCopy(value, 0, content, 1, value.Length);
            return Encode(DerTag.BitString, content);
        }

        public static byte[] Utf8String(string value)
        {
            return Encode(DerTag.Utf8String, new UTF8Encoding(false).GetBytes(value));
        }

        public static byte[] PrintableString(string value)
        {
            if (!IsPrintableString(value))
                throw new ArgumentException("not a PrintableString: " + value);
            return Encode(DerTag.PrintableString, Encoding.ASCII.GetBytes(value));
        }

        public static byte[] Ia5String(string value)
        {
            foreach (char c in value)
            {
                if (c > 0x7F)
                    throw new ArgumentException("not an IA5String (ASCII only): " + value);
            }
            return Encode(DerTag.Ia5String, Encoding.ASCII.GetBytes(value));
        }

        /// <summary>True when every character is in the PrintableString set (X.680 41.4).</summary>
        public static bool IsPrintableString(string value)
        {
            foreach (char c in value)
            {
                bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || " '()+,-./:=?".IndexOf(c) >= 0;
                if (!ok)
                    return false;
            }
            return true;
        }

        /// <summary>The tag byte of [number]: constructed for EXPLICIT tagging and constructed content.</summary>
        public static byte ContextTag(int number, bool constructed)
        {
            if (number < 0 || number > 30)
                throw new ArgumentOutOfRangeException("number");
            return (byte)(0x80 | (constructed ? 0x20 : 0) | number);
        }

        /// <summary>[number] EXPLICIT inner.</summary>
        public static byte[] Explicit(int number, byte[] inner)
        {
            return Encode(ContextTag(number, true), inner);
        }

        /// <summary>An OBJECT IDENTIFIER; arcs after the second may be of any size (2.25 UUID arcs exceed 64 bits).</summary>
        public static byte[] Oid(string dotted)
        {
            string[] arcs = dotted.Split('.');
            if (arcs.Length < 2 || arcs.Any(arc => arc.Length == 0 || arc.Any(c => c < '0' || c > '9')))
                throw new ArgumentException("not an OID (decimal arcs separated by dots): " + dotted);
            ulong first;
            ulong second;
            if (!UInt64.TryParse(arcs[0], NumberStyles.None, CultureInfo.InvariantCulture, out first) || first > 2
                || !UInt64.TryParse(arcs[1], NumberStyles.None, CultureInfo.InvariantCulture, out second) || (first < 2 && second > 39) || second > UInt64.MaxValue - 80)
                throw new ArgumentException("not a valid OID: " + dotted);
            List<byte> content = new List<byte>();
            AppendBase128(content, (first * 40 + second).ToString(CultureInfo.InvariantCulture));
            for (int i = 2; i < arcs.Length; i++)
                AppendBase128(content, arcs[i]);
            return Encode(DerTag.ObjectIdentifier, content.ToArray());
        }

        // One arc in base 128, most significant group first, by long division of its decimal digits.
        private static void AppendBase128(List<byte> output, string decimalArc)
        {
            List<int> digits = decimalArc.Select(c => c - '0').ToList();
            List<byte> groups = new List<byte>();
            do
            {
                List<int> quotient = new List<int>();
                int remainder = 0;
                foreach (int digit in digits)
                {
                    int value = remainder * 10 + digit;
                    if (quotient.Count > 0 || value >= 128)
                        quotient.Add(value / 128);
                    remainder = value % 128;
                }
                groups.Insert(0, (byte)(remainder | (groups.Count > 0 ? 0x80 : 0)));
                digits = quotient;
            }
            while (digits.Count > 0);
            output.AddRange(groups);
        }

        /// <summary>Dotted text of OID content octets; arcs of any size (2.25 UUID arcs exceed 64 bits).</summary>
        public static string DecodeOid(byte[] content)
        {
            if (content.Length == 0 || (content[content.Length - 1] & 0x80) != 0)
                throw new FormatException("DER: OID is empty or cut off");
            List<string> arcs = new List<string>();
            int pos = 0;
            bool firstArc = true;
            while (pos < content.Length)
            {
                if (content[pos] == 0x80)
                    throw new FormatException("DER: OID arc with a leading 0x80");
                // Decimal digits, least significant first: base-128 digits are multiplied in.
                List<int> digits = new List<int> { 0 };
                byte b;
                do
                {
                    b = content[pos++];
                    int carry = b & 0x7F;
                    for (int i = 0; i < digits.Count; i++)
                    {
                        int product = digits[i] * 128 + carry;
                        digits[i] = product % 10;
                        carry = product / 10;
                    }
                    for (; carry > 0; carry /= 10)
                        digits.Add(carry % 10);
                }
                while ((b & 0x80) != 0);
                StringBuilder text = new StringBuilder();
                for (int i = digits.Count - 1; i >= 0; i--)
                    text.Append((char)('0' + digits[i]));
                string arc = text.ToString().TrimStart('0');
                if (arc.Length == 0)
                    arc = "0";
                if (firstArc)
                {
                    // The first subidentifier packs two arcs: 40 * X + Y (X = 2 for values >= 80).
                    ulong packed;
                    if (arc.Length > 19 || !UInt64.TryParse(arc, NumberStyles.None, CultureInfo.InvariantCulture, out packed))
                        throw new FormatException("DER: first OID arc too large");
                    ulong top = packed < 80 ? packed / 40 : 2;
                    arcs.Add(top.ToString(CultureInfo.InvariantCulture));
                    arcs.Add((packed - top * 40).ToString(CultureInfo.InvariantCulture));
                    firstArc = false;
                }
                else
                {
                    arcs.Add(arc);
                }
            }
            return String.Join(".", arcs.ToArray());
        }

        /// <summary>Upper-case hex without separators.</summary>
        public static string Hex(byte[] data)
        {
            StringBuilder text = new StringBuilder(data.Length * 2);
            foreach (byte b in data)
                text.Append(b.ToString("X2", CultureInfo.InvariantCulture));
            return text.ToString();
        }

        public static byte[] FromHex(string hex)
        {
            if (hex.Length % 2 != 0)
                throw new FormatException("odd number of hex digits");
            byte[] result = new byte[hex.Length / 2];
            for (int i = 0; i < result.Length; i++)
                result[i] = Byte.Parse(hex.Substring(2 * i, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            return result;
        }

        public static bool BytesEqual(byte[] a, byte[] b)
        {
            if (a == null || b == null)
                return a == b;
            return a.Length == b.Length && CompareOctets(a, b) == 0;
        }
    }

    // ---------------------------------------------------------------------------------------------
    // PEM, base64 bodies
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// PEM (RFC 7468) and the base64 bodies of EST (RFC 7030 4, RFC 8951 3). Liberal in what is
    /// accepted -- line breaks or none, CR or LF, white space and NULs anywhere, padding or none, and
    /// even raw DER or a PEM block from servers that skip base64 -- exact in what is sent.
    /// </summary>
    public static class Pem
    {
        private static readonly Regex Block = new Regex(@"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", RegexOptions.Singleline);

        /// <summary>The DER of every block labelled label, in file order.</summary>
        public static List<byte[]> Blocks(string text, string label)
        {
            List<byte[]> result = new List<byte[]>();
            foreach (Match match in Block.Matches(text))
            {
                if (match.Groups[1].Value == label)
                    result.Add(DecodeBase64(BlockBody(match.Groups[2].Value)));
            }
            return result;
        }

        // Old-style PEM (RFC 1421) may carry "Name: value" headers and a blank line before the base64.
        private static string BlockBody(string body)
        {
            string text = body.Replace("\r\n", "\n");
            int blank = text.IndexOf("\n\n", StringComparison.Ordinal);
            if (blank >= 0 && text.Substring(0, blank).Contains(":"))
                return text.Substring(blank + 2);
            return text;
        }

        public static string Encode(string label, byte[] der)
        {
            StringBuilder text = new StringBuilder();
            text.Append("-----BEGIN ").Append(label).Append("-----\n");
            text.Append(EncodeBody(der));
            text.Append("-----END ").Append(label).Append("-----\n");
            return text.ToString();
        }

        /// <summary>Base64 as EST requests carry it: 64-column lines, LF, ending with a newline.</summary>
        public static string EncodeBody(byte[] der)
        {
            string text = Convert.ToBase64String(der);
            StringBuilder result = new StringBuilder();
            for (int i = 0; i < text.Length; i += 64)
                result.Append(text, i, Math.Min(64, text.Length - i)).Append('\n');
            return result.ToString();
        }

        /// <summary>Base64 with white space and NULs anywhere and padding optional; the alphabet is checked strictly.</summary>
        public static byte[] DecodeBase64(string text)
        {
            StringBuilder clean = new StringBuilder(text.Length);
            int padding = 0;
            foreach (char c in text)
            {
                if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f' || c == '\0')
                    continue;
                bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
                if (c == '=')
                {
                    padding++;
                    continue;
                }
                if (!alphabet || padding > 0)
                    throw new FormatException(String.Format("not base64: character 0x{0:X2} at position {1}", (int)c, clean.Length + padding));
                clean.Append(c);
            }
            if (padding > 2 || clean.Length % 4 == 1)
                throw new FormatException("not base64: bad length or padding");
            while (clean.Length % 4 != 0)
                clean.Append('=');
            return Convert.FromBase64String(clean.ToString());
        }

        /// <summary>
        /// The DER an EST message body carries (Python engine: codecs.decode_body): raw DER, a PEM
        /// block, or base64 in any layout. what names the body in the error (bad_response).
        /// </summary>
        public static byte[] DecodeBody(byte[] body, string what)
        {
            if (body == null || body.All(IsBlank))
                throw new EstException(EstErrorKind.BadResponse, "the " + what + " body is empty");
            byte[] der = DerPrefix(body);
            if (der != null)
                return der;
            string text = Encoding.GetEncoding("ISO-8859-1").GetString(body);
            Match block = Block.Match(text);
            if (block.Success)
                text = BlockBody(block.Groups[2].Value);
            try
            {
                der = DecodeBase64(text);
            }
            catch (FormatException e)
            {
                throw new EstException(EstErrorKind.BadResponse, String.Format("the {0} body is not valid base64 ({1} bytes): {2}",
                    what, body.Length, e.Message), 0, null, e);
            }
            if (der.Length == 0)
                throw new EstException(EstErrorKind.BadResponse, "the " + what + " body decodes to nothing");
            return der;
        }

        private static bool IsBlank(byte b)
        {
            return b == ' ' || b == '\t' || b == '\r' || b == '\n' || b == 0;
        }

        /// <summary>
        /// The SEQUENCE data starts with when nothing but blanks or NULs follow it (a raw DER body,
        /// perhaps with a line end added), else null. Not by trimming first: DER may end in 00.
        /// </summary>
        public static byte[] DerPrefix(byte[] data)
        {
            if (data.Length < 2 || data[0] != DerTag.Sequence)
                return null;
            DerNode node;
            try
            {
                node = DerNode.Read(data, 0, data.Length);
            }
            catch (FormatException)
            {
                return null;
            }
            for (int i = node.End; i < data.Length; i++)
            {
                if (!IsBlank(data[i]))
                    return null;
            }
            return node.Encoded();
        }

        /// <summary>
        /// Certificates from a file or answer in any of the forms one meets: PEM with one or more
        /// CERTIFICATE (or PKCS7) blocks, a DER certificate, a DER PKCS#7 certs-only, or base64 of
        /// those. FormatException when there is none.
        /// </summary>
        public static List<byte[]> ReadCertificates(byte[] data)
        {
            string text = Encoding.GetEncoding("ISO-8859-1").GetString(data);
            if (text.Contains("-----BEGIN "))
            {
                List<byte[]> certs = Blocks(text, "CERTIFICATE");
                certs.AddRange(Blocks(text, "X509 CERTIFICATE"));
                foreach (byte[] p7 in Blocks(text, "PKCS7"))
                    certs.AddRange(Pkcs7.ParseCertsOnly(p7));
                if (certs.Count == 0)
                    throw new FormatException("no CERTIFICATE or PKCS7 block in the PEM text");
                return certs;
            }
            byte[] der;
            try
            {
                der = DecodeBody(data, "certificate");
            }
            catch (EstException e)
            {
                throw new FormatException(e.Message, e);
            }
            DerNode top = Der.Parse(der);
            List<DerNode> children = top.Children();
            if (children.Count > 0 && children[0].Tag == DerTag.ObjectIdentifier)
                return Pkcs7.ParseCertsOnly(der);
            return new List<byte[]> { der };
        }
    }

    // ---------------------------------------------------------------------------------------------
    // PKCS#7 certs-only
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// The certs-only PKCS#7 of /cacerts and enrollment answers (RFC 7030 4.1.3, 4.2.3; CMS
    /// SignedData, RFC 5652 5.1), read with the DER reader above: no SignedCms, and no
    /// X509Certificate2 either, which cannot load EC certificates on Mono.
    /// </summary>
    public static class Pkcs7
    {
        public const string SignedDataOid = "1.2.840.113549.1.7.2";

        /// <summary>The certificates of a ContentInfo holding SignedData, in the order sent (FormatException when it is not one).</summary>
        public static List<byte[]> ParseCertsOnly(byte[] der)
        {
            DerNode contentInfo = Der.Parse(der).Expect(DerTag.Sequence);
            string type = contentInfo.Child(0, DerTag.ObjectIdentifier).ObjectIdentifier();
            if (type != SignedDataOid)
                throw new FormatException("PKCS#7: content type " + type + " is not signedData");
            DerNode signedData = contentInfo.Child(1, Der.ContextTag(0, true)).Child(0, DerTag.Sequence);
            List<byte[]> certs = new List<byte[]>();
            // version, digestAlgorithms, encapContentInfo, then [0] IMPLICIT CertificateSet, [1] crls, signerInfos.
            foreach (DerNode item in signedData.Children().Skip(3))
            {
                if (item.Tag != Der.ContextTag(0, true))
                    continue;
                foreach (DerNode choice in item.Children())
                {
                    // Other CertificateChoices (attribute certificates, [0]..[3]) are not X.509 certificates.
                    if (choice.Tag == DerTag.Sequence)
                        certs.Add(choice.Encoded());
                }
            }
            return certs;
        }

        /// <summary>The certificate whose SubjectPublicKeyInfo is spki (the issued one), or null.</summary>
        public static byte[] FindIssued(IEnumerable<byte[]> certs, byte[] spki)
        {
            foreach (byte[] cert in certs)
            {
                if (Der.BytesEqual(CertFacts.Parse(cert).SubjectPublicKeyInfo, spki))
                    return cert;
            }
            return null;
        }

        /// <summary>The first certificate that is no other certificate's issuer (the end entity when there is no key to match).</summary>
        public static byte[] FindLeaf(IList<byte[]> certs)
        {
            List<CertFacts> facts = certs.Select(CertFacts.Parse).ToList();
            for (int i = 0; i < facts.Count; i++)
            {
                bool issuesAnother = false;
                for (int j = 0; j < facts.Count; j++)
                {
                    if (i != j && !facts[j].IsSelfIssued && Der.BytesEqual(facts[j].IssuerDer, facts[i].SubjectDer))
                        issuesAnother = true;
                }
                if (!issuesAnother)
                    return certs[i];
            }
            return null;
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Certificate facts
    // ---------------------------------------------------------------------------------------------

    /// <summary>One attribute of a distinguished name.</summary>
    public sealed class NameAttribute
    {
        public NameAttribute(string oid, string value)
        {
            Oid = oid;
            Value = value;
        }

        public string Oid { get; private set; }
        public string Value { get; private set; }
    }

    /// <summary>
    /// Facts about an X.509 certificate read from its DER with the reader above (works for EC
    /// certificates on Mono too). Texts follow the Python engine (certinfo.cert_facts): names as
    /// RFC 4514 strings, serial as upper-case hex, times as UTC ISO 8601; the thumbprint is the
    /// SHA-1 the Windows store shows.
    /// </summary>
    public sealed class CertFacts
    {
        // Short names of RFC 4514 and cryptography's rfc4514_string; other types print as dotted OIDs.
        private static readonly Dictionary<string, string> ShortNames = new Dictionary<string, string>
        {
            { "2.5.4.3", "CN" }, { "2.5.4.7", "L" }, { "2.5.4.8", "ST" }, { "2.5.4.10", "O" }, { "2.5.4.11", "OU" },
            { "2.5.4.6", "C" }, { "2.5.4.9", "STREET" }, { "0.9.2342.19200300.100.1.25", "DC" }, { "0.9.2342.19200300.100.1.1", "UID" },
        };

        public const string SubjectAltNameOid = "2.5.29.17";
        public const string KeyUsageOid = "2.5.29.15";
        public const string ExtendedKeyUsageOid = "2.5.29.37";
        public const string BasicConstraintsOid = "2.5.29.19";

        private CertFacts() { }

        /// <summary>The certificate's DER.</summary>
        public byte[] Encoded { get; private set; }
        /// <summary>SHA-1 of the DER, upper-case hex: Windows' thumbprint.</summary>
        public string Thumbprint { get; private set; }
        /// <summary>SHA-256 of the DER, lower-case hex without colons (the Python engine's fingerprint).</summary>
        public string Sha256Fingerprint { get; private set; }
        public string Subject { get; private set; }
        public string Issuer { get; private set; }
        public byte[] SubjectDer { get; private set; }
        public byte[] IssuerDer { get; private set; }
        /// <summary>RDN attributes in DER order (the RFC 4514 string shows them reversed).</summary>
        public List<NameAttribute> SubjectAttributes { get; private set; }
        /// <summary>Upper-case hex of the serial number without leading zeros.</summary>
        public string Serial { get; private set; }
        public DateTime NotBefore { get; private set; }
        public DateTime NotAfter { get; private set; }
        public byte[] SubjectPublicKeyInfo { get; private set; }
        /// <summary>rsa-2048, ec-p256, ... as the Python engine names key types; the algorithm OID otherwise.</summary>
        public string KeyType { get; private set; }
        /// <summary>"DNS:name", "IP:address", "email:...", "URI:..." in certificate order.</summary>
        public List<string> SubjectAltNames { get; private set; }
        public List<string> DnsNames { get; private set; }
        public List<string> IpAddresses { get; private set; }
        public List<string> ExtendedKeyUsages { get; private set; }
        public bool IsCa { get; private set; }
        /// <summary>Extension values (the DER inside extnValue) by OID, with their critical flags.</summary>
        public Dictionary<string, byte[]> Extensions { get; private set; }
        public Dictionary<string, bool> CriticalExtensions { get; private set; }

        public bool IsSelfIssued { get { return Der.BytesEqual(SubjectDer, IssuerDer); } }

        public string NotBeforeIso { get { return Iso(NotBefore); } }
        public string NotAfterIso { get { return Iso(NotAfter); } }

        public static string Iso(DateTime utc)
        {
            return utc.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        }

        /// <summary>Parses a DER certificate; FormatException when it is not one.</summary>
        public static CertFacts Parse(byte[] der)
        {
            DerNode cert = Der.Parse(der).Expect(DerTag.Sequence);
            List<DerNode> tbs = cert.Child(0, DerTag.Sequence).Children();
            int at = tbs.Count > 0 && tbs[0].Tag == Der.ContextTag(0, true) ? 1 : 0;
            if (tbs.Count < at + 6)
                throw new FormatException("certificate: TBSCertificate is too short");
            CertFacts facts = new CertFacts();
            facts.Encoded = der;
            facts.Thumbprint = Digest(SHA1.Create(), der, true);
            facts.Sha256Fingerprint = Digest(SHA256.Create(), der, false);
            facts.Serial = SerialHex(tbs[at].Expect(DerTag.Integer).Content());
            DerNode issuer = tbs[at + 2].Expect(DerTag.Sequence);
            List<DerNode> validity = tbs[at + 3].Expect(DerTag.Sequence).Children();
            DerNode subject = tbs[at + 4].Expect(DerTag.Sequence);
            if (validity.Count != 2)
                throw new FormatException("certificate: validity is not two times");
            facts.IssuerDer = issuer.Encoded();
            facts.SubjectDer = subject.Encoded();
            facts.Issuer = NameToString(issuer);
            facts.SubjectAttributes = NameAttributes(subject);
            facts.Subject = NameToString(subject);
            facts.NotBefore = validity[0].Time();
            facts.NotAfter = validity[1].Time();
            facts.SubjectPublicKeyInfo = tbs[at + 5].Expect(DerTag.Sequence).Encoded();
            facts.KeyType = KeyTypeOf(facts.SubjectPublicKeyInfo);
            facts.SubjectAltNames = new List<string>();
            facts.DnsNames = new List<string>();
            facts.IpAddresses = new List<string>();
            facts.ExtendedKeyUsages = new List<string>();
            facts.Extensions = new Dictionary<string, byte[]>();
            facts.CriticalExtensions = new Dictionary<string, bool>();
            foreach (DerNode item in tbs.Skip(at + 6))
            {
                if (item.Tag == Der.ContextTag(3, true))
                    facts.ReadExtensions(item.Child(0, DerTag.Sequence));
            }
            return facts;
        }

        private void ReadExtensions(DerNode extensions)
        {
            foreach (DerNode extension in extensions.Children())
            {
                List<DerNode> parts = extension.Children();
                if (parts.Count < 2 || parts.Count > 3)
                    throw new FormatException("certificate: an extension is not OID, critical, value");
                string oid = parts[0].ObjectIdentifier();
                bool critical = parts.Count == 3 && parts[1].Tag == DerTag.Boolean && parts[1].Content()[0] != 0;
                byte[] value = parts[parts.Count - 1].Expect(DerTag.OctetString).Content();
                Extensions[oid] = value;
                CriticalExtensions[oid] = critical;
                if (oid == SubjectAltNameOid)
                    ReadSubjectAltNames(Der.Parse(value));
                else if (oid == ExtendedKeyUsageOid)
                    ExtendedKeyUsages.AddRange(Der.Parse(value).Children().Select(n => n.ObjectIdentifier()));
                else if (oid == BasicConstraintsOid)
                {
                    List<DerNode> constraints = Der.Parse(value).Children();
                    IsCa = constraints.Count > 0 && constraints[0].Tag == DerTag.Boolean && constraints[0].Content()[0] != 0;
                }
            }
        }

        private void ReadSubjectAltNames(DerNode names)
        {
            foreach (DerNode name in names.Children())
            {
                byte[] content = name.Content();
                switch (name.Tag)
                {
                    case 0x81:
                        SubjectAltNames.Add("email:" + Encoding.ASCII.GetString(content));
                        break;
                    case 0x82:
                        string dns = Encoding.ASCII.GetString(content);
                        DnsNames.Add(dns);
                        SubjectAltNames.Add("DNS:" + dns);
                        break;
                    case 0x86:
                        SubjectAltNames.Add("URI:" + Encoding.ASCII.GetString(content));
                        break;
                    case 0x87:
                        if (content.Length == 4 || content.Length == 16)
                        {
                            string ip = new IPAddress(content).ToString();
                            IpAddresses.Add(ip);
                            SubjectAltNames.Add("IP:" + ip);
                        }
                        break;
                }
            }
        }

        private static string Digest(HashAlgorithm algorithm, byte[] data, bool upper)
        {
            using (algorithm)
            {
                string hex = Der.Hex(algorithm.ComputeHash(data));
                return upper ? hex : hex.ToLowerInvariant();
            }
        }

        private static string SerialHex(byte[] content)
        {
            string hex = Der.Hex(content).TrimStart('0');
            return hex.Length == 0 ? "0" : hex;
        }

        /// <summary>The attributes of a Name in DER order (multi-valued RDNs flattened).</summary>
        public static List<NameAttribute> NameAttributes(DerNode name)
        {
            List<NameAttribute> result = new List<NameAttribute>();
            foreach (DerNode rdn in name.Children())
            {
                foreach (DerNode ava in rdn.Expect(DerTag.Set).Children())
                {
                    List<DerNode> pair = ava.Children();
                    if (pair.Count != 2)
                        throw new FormatException("name: an attribute is not type and value");
                    result.Add(new NameAttribute(pair[0].ObjectIdentifier(), AttributeText(pair[1])));
                }
            }
            return result;
        }

        private static string AttributeText(DerNode value)
        {
            try
            {
                return value.Text();
            }
            catch (FormatException)
            {
                return "#" + Der.Hex(value.Encoded()).ToLowerInvariant();
            }
        }

        /// <summary>RFC 4514 text of a DER Name: last RDN first, "," between RDNs, "+" inside one.</summary>
        public static string NameToString(DerNode name)
        {
            List<string> rdns = new List<string>();
            foreach (DerNode rdn in name.Children())
            {
                List<string> avas = new List<string>();
                foreach (DerNode ava in rdn.Expect(DerTag.Set).Children())
                {
                    List<DerNode> pair = ava.Children();
                    if (pair.Count != 2)
                        throw new FormatException("name: an attribute is not type and value");
                    string oid = pair[0].ObjectIdentifier();
                    string shortName;
                    if (!ShortNames.TryGetValue(oid, out shortName))
                        shortName = oid;
                    avas.Add(shortName + "=" + EscapeValue(AttributeText(pair[1])));
                }
                rdns.Insert(0, String.Join("+", avas.ToArray()));
            }
            return String.Join(",", rdns.ToArray());
        }

        /// <summary>RFC 4514 2.4 escaping, as cryptography does it.</summary>
        public static string EscapeValue(string value)
        {
            if (value.Length == 0)
                return value;
            StringBuilder text = new StringBuilder();
            foreach (char c in value)
            {
                if ("\\\"+,;<>".IndexOf(c) >= 0)
                    text.Append('\\').Append(c);
                else if (c == '\0')
                    text.Append("\\00");
                else
                    text.Append(c);
            }
            if (text[0] == '#' || text[0] == ' ')
                text.Insert(0, '\\');
            if (text[text.Length - 1] == ' ' && !(text.Length >= 2 && text[text.Length - 2] == '\\'))
                text.Insert(text.Length - 1, '\\');
            return text.ToString();
        }

        /// <summary>rsa-BITS, ec-p256/p384/p521 from a SubjectPublicKeyInfo; the algorithm OID for anything else.</summary>
        public static string KeyTypeOf(byte[] spki)
        {
            DerNode info = Der.Parse(spki);
            List<DerNode> algorithm = info.Child(0, DerTag.Sequence).Children();
            string oid = algorithm[0].ObjectIdentifier();
            if (oid == Pkcs10Builder.RsaEncryptionOid)
            {
                byte[] modulus = Der.Parse(info.Child(1, DerTag.BitString).BitStringBytes()).Child(0, DerTag.Integer).Content();
                int skip = 0;
                while (skip < modulus.Length && modulus[skip] == 0)
                    skip++;
                int bits = (modulus.Length - skip) * 8;
                for (int top = skip < modulus.Length ? modulus[skip] : 0; top < 0x80 && bits > 0; top <<= 1)
                    bits--;
                return "rsa-" + bits.ToString(CultureInfo.InvariantCulture);
            }
            if (oid == Pkcs10Builder.EcPublicKeyOid && algorithm.Count > 1 && algorithm[1].Tag == DerTag.ObjectIdentifier)
            {
                switch (algorithm[1].ObjectIdentifier())
                {
                    case Pkcs10Builder.P256Oid: return "ec-p256";
                    case Pkcs10Builder.P384Oid: return "ec-p384";
                    case Pkcs10Builder.P521Oid: return "ec-p521";
                }
            }
            return oid;
        }

        /// <summary>A thumbprint as typed or pasted: spaces, colons and the invisible marks Windows' certificate dialog copies dropped, upper case.</summary>
        public static string NormalizeThumbprint(string value)
        {
            StringBuilder text = new StringBuilder();
            foreach (char c in value)
            {
                if (Uri.IsHexDigit(c))
                    text.Append(Char.ToUpperInvariant(c));
                else if (!(Char.IsWhiteSpace(c) || c == ':' || c == '\u200E' || c == '\u200F' || c == '\uFEFF'))
                    return null;
            }
            return text.ToString();
        }

        /// <summary>True when selector names this certificate: a SHA-1 thumbprint (any case, spaces or colons) or a subject.</summary>
        public bool Matches(string selector)
        {
            string thumbprint = NormalizeThumbprint(selector);
            if (thumbprint != null && thumbprint.Length == 40)
                return thumbprint == Thumbprint;
            List<NameAttribute> wanted = ParseSubject(selector);
            List<NameAttribute> mine = new List<NameAttribute>(SubjectAttributes);
            mine.Reverse(); // RFC 4514 order, the order people write and Windows shows
            if (wanted.Count != mine.Count)
                return false;
            for (int i = 0; i < mine.Count; i++)
            {
                if (wanted[i].Oid != mine[i].Oid || !String.Equals(wanted[i].Value, mine[i].Value, StringComparison.OrdinalIgnoreCase))
                    return false;
            }
            return true;
        }

        // Names people write in subjects (the Python engine's list, plus E and S as Windows shows them).
        private static readonly Dictionary<string, string> NameOids = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            { "CN", "2.5.4.3" }, { "commonName", "2.5.4.3" }, { "C", "2.5.4.6" }, { "countryName", "2.5.4.6" },
            { "L", "2.5.4.7" }, { "localityName", "2.5.4.7" }, { "ST", "2.5.4.8" }, { "S", "2.5.4.8" },
            { "stateOrProvinceName", "2.5.4.8" }, { "STREET", "2.5.4.9" }, { "streetAddress", "2.5.4.9" },
            { "O", "2.5.4.10" }, { "organizationName", "2.5.4.10" }, { "OU", "2.5.4.11" }, { "organizationalUnitName", "2.5.4.11" },
            { "title", "2.5.4.12" }, { "serialNumber", "2.5.4.5" }, { "postalCode", "2.5.4.17" }, { "SN", "2.5.4.4" },
            { "surname", "2.5.4.4" }, { "givenName", "2.5.4.42" }, { "GN", "2.5.4.42" }, { "pseudonym", "2.5.4.65" },
            { "DC", "0.9.2342.19200300.100.1.25" }, { "domainComponent", "0.9.2342.19200300.100.1.25" },
            { "UID", "0.9.2342.19200300.100.1.1" }, { "userId", "0.9.2342.19200300.100.1.1" },
            { "E", "1.2.840.113549.1.9.1" }, { "emailAddress", "1.2.840.113549.1.9.1" }, { "email", "1.2.840.113549.1.9.1" },
        };

        /// <summary>The OID of a subject attribute name (CN, O, ...) or of a dotted OID; null when unknown.</summary>
        public static string AttributeOid(string name)
        {
            string oid;
            if (NameOids.TryGetValue(name.Trim(), out oid))
                return oid;
            return Regex.IsMatch(name.Trim(), @"^[0-2](\.[0-9]+)+$") ? name.Trim() : null;
        }

        /// <summary>
        /// "CN=web, O=Example" (RFC 4514 order, most specific first, as Windows shows subjects) as
        /// attributes in that order; ',' or '+' separate attributes, '\' escapes.
        /// </summary>
        public static List<NameAttribute> ParseSubject(string text)
        {
            List<NameAttribute> result = new List<NameAttribute>();
            List<string> parts = new List<string>();
            StringBuilder current = new StringBuilder();
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                if (c == '\\' && i + 1 < text.Length)
                {
                    current.Append(text[++i]);
                }
                else if (c == ',' || c == '+' || c == ';')
                {
                    parts.Add(current.ToString());
                    current.Length = 0;
                }
                else
                {
                    current.Append(c);
                }
            }
            parts.Add(current.ToString());
            foreach (string part in parts)
            {
                int equals = part.IndexOf('=');
                string oid = equals > 0 ? AttributeOid(part.Substring(0, equals)) : null;
                if (oid == null)
                    throw new EstException(EstErrorKind.InvalidInput, String.Format("cannot read subject {0}: {1} is not NAME=value with a known NAME", text, part.Trim()));
                result.Add(new NameAttribute(oid, part.Substring(equals + 1).Trim()));
            }
            return result;
        }

        /// <summary>True when now is at or after notAfter - renewBefore (a certificate that has expired is due too).</summary>
        public static bool IsDue(DateTime notAfter, TimeSpan renewBefore, DateTime now)
        {
            return now.ToUniversalTime() >= notAfter.ToUniversalTime() - renewBefore;
        }
    }

    /// <summary>
    /// When the renewal window opens, as the Python engine's renew_before takes it: "30" or "30d"
    /// days, "12h", "90m", "600s", or a share of the lifetime "33%"; empty means a third of it.
    /// </summary>
    public sealed class RenewWindow
    {
        private RenewWindow(double seconds, double share)
        {
            Seconds = seconds;
            Share = share;
        }

        /// <summary>Fixed window in seconds, or -1 when the window is a share.</summary>
        public double Seconds { get; private set; }
        /// <summary>Share of the lifetime (0..1), or -1 when the window is in seconds.</summary>
        public double Share { get; private set; }

        public static RenewWindow Parse(string value)
        {
            if (String.IsNullOrEmpty(value))
                return new RenewWindow(-1, 1 / 3.0);
            Match match = Regex.Match(value, @"^\s*(\d+(?:\.\d+)?)\s*(%|d|h|m|s)?\s*$", RegexOptions.IgnoreCase);
            if (!match.Success)
                throw new EstException(EstErrorKind.InvalidInput, "renew_before must be days (30 or 30d), hours (12h), minutes (90m), seconds (600s) "
                    + "or a share of the lifetime (33%), got " + value);
            double number = Double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            string unit = match.Groups[2].Success ? match.Groups[2].Value.ToLowerInvariant() : "d";
            if (unit == "%")
            {
                if (number > 100)
                    throw new EstException(EstErrorKind.InvalidInput, "renew_before as a share must be at most 100%, got " + value);
                return new RenewWindow(-1, number / 100.0);
            }
            double factor = unit == "d" ? 86400 : unit == "h" ? 3600 : unit == "m" ? 60 : 1;
            return new RenewWindow(number * factor, -1);
        }

        /// <summary>How long before notAfter the window opens, for a certificate valid from notBefore to notAfter.</summary>
        public TimeSpan Before(DateTime notBefore, DateTime notAfter)
        {
            if (Share >= 0)
                return TimeSpan.FromSeconds((notAfter - notBefore).TotalSeconds * Share);
            return TimeSpan.FromSeconds(Seconds);
        }
    }

    /// <summary>What to do with a certificate: nothing, renew it, or give up because it has expired.</summary>
    public sealed class RenewalDecision
    {
        public const string None = "none";
        public const string Renew = "renew";
        public const string Expired = "expired";

        private RenewalDecision(string action, string reason)
        {
            Action = action;
            Reason = reason;
        }

        public string Action { get; private set; }
        public string Reason { get; private set; }

        /// <summary>
        /// The decision for a certificate valid from notBefore to notAfter at now. An expired (or
        /// not yet valid) certificate cannot authenticate a re-enrollment, so it is never "renew".
        /// </summary>
        public static RenewalDecision Decide(DateTime notBefore, DateTime notAfter, RenewWindow window, DateTime now, bool force)
        {
            now = now.ToUniversalTime();
            if (now >= notAfter || now < notBefore)
                return new RenewalDecision(Expired, String.Format("the certificate is not valid now (valid {0} to {1})",
                    CertFacts.Iso(notBefore), CertFacts.Iso(notAfter)));
            if (force)
                return new RenewalDecision(Renew, "force is set");
            DateTime opens = notAfter - window.Before(notBefore, notAfter);
            if (CertFacts.IsDue(notAfter, notAfter - opens, now))
                return new RenewalDecision(Renew, "the certificate is inside its renewal window since " + CertFacts.Iso(opens));
            return new RenewalDecision(None, "valid until " + CertFacts.Iso(notAfter) + ", renewal window opens " + CertFacts.Iso(opens));
        }
    }

    // ---------------------------------------------------------------------------------------------
    // PKCS#10
    // ---------------------------------------------------------------------------------------------

    /// <summary>Signs a certification request with a key that may never leave its key storage provider.</summary>
    public interface ICsrSigner
    {
        /// <summary>The signature AlgorithmIdentifier, DER.</summary>
        byte[] SignatureAlgorithmDer();
        /// <summary>The signature value over tbs in the form the algorithm puts in the BIT STRING.</summary>
        byte[] Sign(byte[] tbs);
        /// <summary>The public key, DER SubjectPublicKeyInfo.</summary>
        byte[] SubjectPublicKeyInfo();
    }

    /// <summary>sha256WithRSAEncryption, PKCS#1 v1.5, over any RSA: RSACryptoServiceProvider, or RSACng on a KSP or TPM key.</summary>
    public sealed class RsaCsrSigner : ICsrSigner
    {
        private readonly RSA key;

        public RsaCsrSigner(RSA key)
        {
            this.key = key;
        }

        public byte[] SignatureAlgorithmDer()
        {
            return Der.Sequence(Der.Oid("1.2.840.113549.1.1.11"), Der.Null());
        }

        public byte[] Sign(byte[] tbs)
        {
            return key.SignData(tbs, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        }

        public byte[] SubjectPublicKeyInfo()
        {
            RSAParameters parameters = key.ExportParameters(false);
            return Pkcs10Builder.RsaSpki(parameters.Modulus, parameters.Exponent);
        }
    }

    /// <summary>
    /// ECDSA with the hash that matches the curve (P-256/SHA-256, P-384/SHA-384, P-521/SHA-512).
    /// .NET returns IEEE P1363 r||s; X.509 wants the DER ECDSA-Sig-Value.
    /// </summary>
    public sealed class EcdsaCsrSigner : ICsrSigner
    {
        private readonly ECDsa key;

        public EcdsaCsrSigner(ECDsa key)
        {
            this.key = key;
        }

        public byte[] SignatureAlgorithmDer()
        {
            string oid = key.KeySize <= 256 ? "1.2.840.10045.4.3.2" : key.KeySize <= 384 ? "1.2.840.10045.4.3.3" : "1.2.840.10045.4.3.4";
            return Der.Sequence(Der.Oid(oid));
        }

        public byte[] Sign(byte[] tbs)
        {
            HashAlgorithmName hash = key.KeySize <= 256 ? HashAlgorithmName.SHA256 : key.KeySize <= 384 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA512;
            return EcdsaSignature.P1363ToDer(key.SignData(tbs, hash));
        }

        public byte[] SubjectPublicKeyInfo()
        {
            ECParameters parameters = key.ExportParameters(false);
            // Named by size: CNG reports its curves by friendly name, not always with the OID value.
            string curve = key.KeySize == 256 ? Pkcs10Builder.P256Oid : key.KeySize == 384 ? Pkcs10Builder.P384Oid : key.KeySize == 521 ? Pkcs10Builder.P521Oid : null;
            if (curve == null)
                throw new EstException(EstErrorKind.KeyStore, "unsupported EC key size " + key.KeySize);
            return Pkcs10Builder.EcSpki(curve, parameters.Q.X, parameters.Q.Y);
        }
    }

    /// <summary>Conversions between the two ECDSA signature forms.</summary>
    public static class EcdsaSignature
    {
        /// <summary>r||s (two equal halves) to SEQUENCE { INTEGER r, INTEGER s }.</summary>
        public static byte[] P1363ToDer(byte[] signature)
        {
            if (signature.Length == 0 || signature.Length % 2 != 0)
                throw new ArgumentException("an IEEE P1363 signature has two halves of equal length");
            int half = signature.Length / 2;
            byte[] r = new byte[half];
            byte[] s = new byte[half];
            Buffer.BlockCopy(signature, 0, r, 0, half);
            Buffer.BlockCopy(signature, half, s, 0, half);
            return Der.Sequence(Der.UnsignedInteger(r), Der.UnsignedInteger(s));
        }

        /// <summary>SEQUENCE { r, s } to r||s, each half fieldBytes long (32 for P-256, 48 for P-384, 66 for P-521).</summary>
        public static byte[] DerToP1363(byte[] der, int fieldBytes)
        {
            DerNode sequence = Der.Parse(der).Expect(DerTag.Sequence);
            byte[] result = new byte[2 * fieldBytes];
            for (int i = 0; i < 2; i++)
            {
                byte[] value = sequence.Child(i, DerTag.Integer).Content();
                int skip = 0;
                while (skip < value.Length - 1 && value[skip] == 0)
                    skip++;
                int length = value.Length - skip;
                if (length > fieldBytes)
                    throw new FormatException("ECDSA signature value longer than the field");
                Buffer.BlockCopy(value, skip, result, i * fieldBytes + fieldBytes - length, length);
            }
            return result;
        }
    }

    /// <summary>
    /// Builds a PKCS#10 certification request (RFC 2986): subject, public key, an extensionRequest
    /// (subjectAltName, keyUsage, extendedKeyUsage, extensions copied as they are) and an optional
    /// challengePassword, signed through an <see cref="ICsrSigner"/>.
    /// </summary>
    public sealed class Pkcs10Builder
    {
        public const string RsaEncryptionOid = "1.2.840.113549.1.1.1";
        public const string EcPublicKeyOid = "1.2.840.10045.2.1";
        public const string P256Oid = "1.2.840.10045.3.1.7";
        public const string P384Oid = "1.3.132.0.34";
        public const string P521Oid = "1.3.132.0.35";
        public const string ExtensionRequestOid = "1.2.840.113549.1.9.14";
        public const string ChallengePasswordOid = "1.2.840.113549.1.9.7";

        private static readonly Dictionary<string, int> KeyUsageBits = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase)
        {
            { "digitalSignature", 0 }, { "nonRepudiation", 1 }, { "contentCommitment", 1 }, { "keyEncipherment", 2 },
            { "dataEncipherment", 3 }, { "keyAgreement", 4 }, { "keyCertSign", 5 }, { "cRLSign", 6 },
            { "encipherOnly", 7 }, { "decipherOnly", 8 },
        };

        private static readonly Dictionary<string, string> ExtendedKeyUsageOids = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            { "serverAuth", "1.3.6.1.5.5.7.3.1" }, { "clientAuth", "1.3.6.1.5.5.7.3.2" }, { "codeSigning", "1.3.6.1.5.5.7.3.3" },
            { "emailProtection", "1.3.6.1.5.5.7.3.4" }, { "timeStamping", "1.3.6.1.5.5.7.3.8" }, { "OCSPSigning", "1.3.6.1.5.5.7.3.9" },
            { "anyExtendedKeyUsage", "2.5.29.37.0" },
        };

        private readonly List<byte[]> rdns = new List<byte[]>();
        private byte[] subjectDer;
        private readonly List<byte[]> generalNames = new List<byte[]>();
        private readonly SortedSet<int> keyUsage = new SortedSet<int>();
        private readonly List<string> extendedKeyUsage = new List<string>();
        private readonly List<KeyValuePair<string, byte[]>> rawExtensions = new List<KeyValuePair<string, byte[]>>();
        private readonly Dictionary<string, bool> rawCritical = new Dictionary<string, bool>();
        private string challengePassword;

        /// <summary>
        /// Appends an RDN with one attribute (CN, O, OU, C, ST, L, serialNumber, emailAddress, DC,
        /// ... or a dotted OID). DER order is the order of the calls: add C or O before CN for the
        /// usual most-general-first name.
        /// </summary>
        public Pkcs10Builder AddSubject(string name, string value)
        {
            string oid = CertFacts.AttributeOid(name);
            if (oid == null)
                throw new EstException(EstErrorKind.InvalidInput, "unknown subject attribute " + name
                    + " (use e.g. CN, O, OU, C, ST, L, serialNumber, emailAddress, DC, or a dotted OID)");
            if (String.IsNullOrEmpty(value))
                throw new EstException(EstErrorKind.InvalidInput, "subject attribute " + name + " is empty");
            if (value.Any(c => c < 0x20 || (c >= 0x7F && c <= 0x9F)))
                throw new EstException(EstErrorKind.InvalidInput, "subject attribute " + name + " contains a control character");
            if (oid == "2.5.4.6" && !Regex.IsMatch(value, "^[A-Za-z]{2}$"))
                throw new EstException(EstErrorKind.InvalidInput, "subject C (country) must be two letters, got " + value);
            if (oid == "2.5.4.3" && Encoding.UTF8.GetByteCount(value) > 64)
                throw new EstException(EstErrorKind.InvalidInput, "common name is longer than 64 bytes (RFC 5280 ub-common-name)");
            rdns.Add(Der.SetOf(new byte[][] { Der.Sequence(Der.Oid(oid), AttributeValue(oid, value)) }));
            subjectDer = null;
            return this;
        }

        // String types as cryptography picks them: PrintableString for country and serial number,
        // IA5String for e-mail and domain components, UTF8String for the rest (RFC 5280 4.1.2.6).
        private static byte[] AttributeValue(string oid, string value)
        {
            if ((oid == "2.5.4.6" || oid == "2.5.4.5") && Der.IsPrintableString(value))
                return Der.PrintableString(value);
            if (oid == "1.2.840.113549.1.9.1" || oid == "0.9.2342.19200300.100.1.25")
                return Der.Ia5String(value);
            return Der.Utf8String(value);
        }

        /// <summary>Uses a complete DER Name, e.g. the subject of the certificate being renewed (RFC 7030 4.2.2 wants it repeated exactly).</summary>
        public Pkcs10Builder SetSubjectDer(byte[] nameDer)
        {
            Der.Parse(nameDer).Expect(DerTag.Sequence);
            subjectDer = nameDer;
            rdns.Clear();
            return this;
        }

        public Pkcs10Builder AddDns(string name)
        {
            generalNames.Add(Der.Encode(Der.ContextTag(2, false), Encoding.ASCII.GetBytes(Ascii(name, "DNS name"))));
            return this;
        }

        public Pkcs10Builder AddIp(string address)
        {
            IPAddress parsed;
            if (!IPAddress.TryParse(address.Trim('[', ']'), out parsed))
                throw new EstException(EstErrorKind.InvalidInput, "not an IP address: " + address);
            generalNames.Add(Der.Encode(Der.ContextTag(7, false), parsed.GetAddressBytes()));
            return this;
        }

        public Pkcs10Builder AddEmail(string address)
        {
            generalNames.Add(Der.Encode(Der.ContextTag(1, false), Encoding.ASCII.GetBytes(Ascii(address, "e-mail address"))));
            return this;
        }

        public Pkcs10Builder AddUri(string uri)
        {
            generalNames.Add(Der.Encode(Der.ContextTag(6, false), Encoding.ASCII.GetBytes(Ascii(uri, "URI"))));
            return this;
        }

        /// <summary>A subjectAltName written as the Python modules take it: DNS:..., IP:..., email:..., URI:...</summary>
        public Pkcs10Builder AddSubjectAltName(string prefixed)
        {
            int colon = prefixed.IndexOf(':');
            string kind = colon > 0 ? prefixed.Substring(0, colon).Trim().ToUpperInvariant() : "";
            string value = colon > 0 ? prefixed.Substring(colon + 1).Trim() : prefixed;
            switch (kind)
            {
                case "DNS": return AddDns(value);
                case "IP": return AddIp(value);
                case "EMAIL": return AddEmail(value);
                case "URI": return AddUri(value);
                default:
                    throw new EstException(EstErrorKind.InvalidInput, "subjectAltName must start with DNS:, IP:, email: or URI:, got " + prefixed);
            }
        }

        private static string Ascii(string value, string what)
        {
            if (String.IsNullOrEmpty(value) || value.Any(c => c <= 0x20 || c >= 0x7F))
                throw new EstException(EstErrorKind.InvalidInput, what + " must be non-empty printable ASCII (IDNA-encode names), got " + value);
            return value;
        }

        /// <summary>digitalSignature, keyEncipherment, keyAgreement, ... (RFC 5280 4.2.1.3 names).</summary>
        public Pkcs10Builder AddKeyUsage(string name)
        {
            int bit;
            if (!KeyUsageBits.TryGetValue(name.Trim(), out bit))
                throw new EstException(EstErrorKind.InvalidInput, "unknown key usage " + name + " (use e.g. digitalSignature, keyEncipherment, keyAgreement)");
            keyUsage.Add(bit);
            return this;
        }

        /// <summary>serverAuth, clientAuth, ... or a dotted OID.</summary>
        public Pkcs10Builder AddExtendedKeyUsage(string nameOrOid)
        {
            string oid;
            if (!ExtendedKeyUsageOids.TryGetValue(nameOrOid.Trim(), out oid))
            {
                if (!Regex.IsMatch(nameOrOid.Trim(), @"^[0-2](\.[0-9]+)+$"))
                    throw new EstException(EstErrorKind.InvalidInput, "unknown extended key usage " + nameOrOid + " (use serverAuth, clientAuth, ... or a dotted OID)");
                oid = nameOrOid.Trim();
            }
            if (!extendedKeyUsage.Contains(oid))
                extendedKeyUsage.Add(oid);
            return this;
        }

        /// <summary>
        /// Adds an extension as it is (value = the DER inside extnValue), e.g. one copied from the
        /// certificate being renewed; it replaces what the Add* methods would build for that OID.
        /// </summary>
        public Pkcs10Builder AddExtension(string oid, bool critical, byte[] valueDer)
        {
            rawExtensions.RemoveAll(pair => pair.Key == oid);
            rawExtensions.Add(new KeyValuePair<string, byte[]>(oid, valueDer));
            rawCritical[oid] = critical;
            return this;
        }

        public Pkcs10Builder SetChallengePassword(string password)
        {
            challengePassword = password;
            return this;
        }

        private byte[] NameDer()
        {
            return subjectDer ?? Der.SequenceOf(rdns);
        }

        private List<byte[]> ExtensionsDer()
        {
            bool emptySubject = Der.Parse(NameDer()).Children().Count == 0;
            List<KeyValuePair<string, byte[]>> built = new List<KeyValuePair<string, byte[]>>();
            Dictionary<string, bool> critical = new Dictionary<string, bool>();
            if (generalNames.Count > 0)
            {
                built.Add(new KeyValuePair<string, byte[]>(CertFacts.SubjectAltNameOid, Der.SequenceOf(generalNames)));
                critical[CertFacts.SubjectAltNameOid] = emptySubject; // RFC 5280 4.2.1.6
            }
            if (keyUsage.Count > 0)
            {
                built.Add(new KeyValuePair<string, byte[]>(CertFacts.KeyUsageOid, Der.NamedBits(keyUsage)));
                critical[CertFacts.KeyUsageOid] = true;
            }
            if (extendedKeyUsage.Count > 0)
            {
                built.Add(new KeyValuePair<string, byte[]>(CertFacts.ExtendedKeyUsageOid, Der.SequenceOf(extendedKeyUsage.Select(Der.Oid))));
                critical[CertFacts.ExtendedKeyUsageOid] = false;
            }
            built.RemoveAll(pair => rawCritical.ContainsKey(pair.Key));
            built.AddRange(rawExtensions);
            foreach (KeyValuePair<string, bool> pair in rawCritical)
                critical[pair.Key] = pair.Value;
            List<byte[]> result = new List<byte[]>();
            foreach (KeyValuePair<string, byte[]> pair in built)
            {
                result.Add(critical[pair.Key]
                    ? Der.Sequence(Der.Oid(pair.Key), Der.Boolean(true), Der.OctetString(pair.Value))
                    : Der.Sequence(Der.Oid(pair.Key), Der.OctetString(pair.Value)));
            }
            return result;
        }

        /// <summary>The CertificationRequestInfo DER for the public key spki: what the signer signs.</summary>
        public byte[] CertificationRequestInfo(byte[] spki)
        {
            byte[] name = NameDer();
            List<byte[]> extensions = ExtensionsDer();
            if (Der.Parse(name).Children().Count == 0 && generalNames.Count == 0 && !rawCritical.ContainsKey(CertFacts.SubjectAltNameOid))
                throw new EstException(EstErrorKind.InvalidInput, "the request needs a subject or a subjectAltName");
            List<byte[]> attributes = new List<byte[]>();
            if (extensions.Count > 0)
                attributes.Add(Der.Sequence(Der.Oid(ExtensionRequestOid), Der.SetOf(new byte[][] { Der.SequenceOf(extensions) })));
            if (!String.IsNullOrEmpty(challengePassword))
            {
                byte[] value = Der.IsPrintableString(challengePassword) ? Der.PrintableString(challengePassword) : Der.Utf8String(challengePassword);
                attributes.Add(Der.Sequence(Der.Oid(ChallengePasswordOid), Der.SetOf(new byte[][] { value })));
            }
            // attributes [0] IMPLICIT SET OF Attribute: DER order, like any SET OF.
            byte[] attributeSet = Der.Encode(Der.ContextTag(0, true), Der.Concat(Der.SortedForSet(attributes)));
            Der.Parse(spki).Expect(DerTag.Sequence);
            return Der.Sequence(Der.Integer(0), name, spki, attributeSet);
        }

        /// <summary>The signed request, DER.</summary>
        public byte[] Build(ICsrSigner signer)
        {
            byte[] info = CertificationRequestInfo(signer.SubjectPublicKeyInfo());
            byte[] signature;
            try
            {
                signature = signer.Sign(info);
            }
            catch (CryptographicException e)
            {
                throw new EstException(EstErrorKind.KeyStore, "the key could not sign the certificate request: " + e.Message, 0, null, e);
            }
            return Der.Sequence(info, signer.SignatureAlgorithmDer(), Der.BitString(signature));
        }

        /// <summary>SubjectPublicKeyInfo of an RSA key (RFC 3279 2.3.1).</summary>
        public static byte[] RsaSpki(byte[] modulus, byte[] exponent)
        {
            byte[] key = Der.Sequence(Der.UnsignedInteger(modulus), Der.UnsignedInteger(exponent));
            return Der.Sequence(Der.Sequence(Der.Oid(RsaEncryptionOid), Der.Null()), Der.BitString(key));
        }

        /// <summary>SubjectPublicKeyInfo of an EC key on a named curve, uncompressed point (RFC 5480).</summary>
        public static byte[] EcSpki(string curveOid, byte[] x, byte[] y)
        {
            int size = curveOid == P256Oid ? 32 : curveOid == P384Oid ? 48 : curveOid == P521Oid ? 66 : 0;
            if (size == 0)
                throw new ArgumentException("unsupported curve " + curveOid);
            byte[] point = new byte[1 + 2 * size];
            point[0] = 0x04;
            CopyFixed(x, point, 1, size);
            CopyFixed(y, point, 1 + size, size);
            return Der.Sequence(Der.Sequence(Der.Oid(EcPublicKeyOid), Der.Oid(curveOid)), Der.BitString(point));
        }

        public static byte[] EcP256Spki(byte[] x, byte[] y)
        {
            return EcSpki(P256Oid, x, y);
        }

        public static byte[] EcP384Spki(byte[] x, byte[] y)
        {
            return EcSpki(P384Oid, x, y);
        }

        // A coordinate, left-padded with zeros to the field size (exporters may drop leading zeros).
        private static void CopyFixed(byte[] value, byte[] target, int offset, int size)
        {
            int skip = 0;
            while (value.Length - skip > size && value[skip] == 0)
                skip++;
            if (value.Length - skip > size)
                throw new ArgumentException("EC coordinate longer than the field");
            Buffer.BlockCopy(value, skip, target, offset + size - (value.Length - skip), value.Length - skip);
        }
    }

    /// <summary>The signer for a private key .NET hands out (RSA or ECDsa, whatever provider holds it).</summary>
    public static class CsrSigners
    {
        public static ICsrSigner For(AsymmetricAlgorithm key)
        {
            RSA rsa = key as RSA;
            if (rsa != null)
                return new RsaCsrSigner(rsa);
            ECDsa ecdsa = key as ECDsa;
            if (ecdsa != null)
                return new EcdsaCsrSigner(ecdsa);
            throw new EstException(EstErrorKind.KeyStore, "keys of type " + (key == null ? "(none)" : key.GetType().Name) + " cannot sign a request");
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Trust: TLS server certificates and issued certificates
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// The CA bundle the user names (ca_path). A certificate is trusted when the chain .NET builds
    /// for it (bundle and any certificates at hand as extra store, no revocation check) reaches a
    /// certificate of the bundle, compared by thumbprint: any certificate of the bundle is an
    /// anchor, as with the Python engine (OpenSSL's partial-chain flag), so a pinned intermediate
    /// works. The machine's root store decides nothing.
    /// </summary>
    public sealed class TrustBundle
    {
        private readonly List<X509Certificate2> anchors;
        private readonly HashSet<string> thumbprints;

        public TrustBundle(IEnumerable<X509Certificate2> certificates)
        {
            anchors = new List<X509Certificate2>(certificates);
            if (anchors.Count == 0)
                throw new EstException(EstErrorKind.InvalidInput, "the CA bundle holds no certificates");
            thumbprints = new HashSet<string>(anchors.Select(c => c.Thumbprint.ToUpperInvariant()));
        }

        /// <summary>Reads a bundle file: PEM (one or more certificates), DER or PKCS#7.</summary>
        public static TrustBundle Load(string path)
        {
            try
            {
                return new TrustBundle(Pem.ReadCertificates(File.ReadAllBytes(path)).Select(der => new X509Certificate2(der)));
            }
            catch (IOException e)
            {
                throw new EstException(EstErrorKind.InvalidInput, "cannot read the CA bundle " + path + ": " + e.Message, 0, null, e);
            }
            catch (UnauthorizedAccessException e)
            {
                throw new EstException(EstErrorKind.InvalidInput, "cannot read the CA bundle " + path + ": " + e.Message, 0, null, e);
            }
            catch (FormatException e)
            {
                throw new EstException(EstErrorKind.InvalidInput, "the CA bundle " + path + " holds no usable certificates: " + e.Message, 0, null, e);
            }
            catch (CryptographicException e)
            {
                throw new EstException(EstErrorKind.InvalidInput, "the CA bundle " + path + " holds a certificate that cannot be loaded: " + e.Message, 0, null, e);
            }
        }

        public IList<X509Certificate2> Certificates { get { return anchors.AsReadOnly(); } }

        /// <summary>null when cert chains to the bundle, else why not.</summary>
        public string Verify(X509Certificate2 cert, IEnumerable<X509Certificate2> intermediates)
        {
            using (X509Chain chain = new X509Chain())
            {
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                chain.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
                chain.ChainPolicy.ExtraStore.AddRange(anchors.ToArray());
                foreach (X509Certificate2 extra in intermediates)
                    chain.ChainPolicy.ExtraStore.Add(extra);
                chain.Build(cert);
                int anchorAt = -1;
                for (int i = 0; i < chain.ChainElements.Count && anchorAt < 0; i++)
                {
                    if (thumbprints.Contains(chain.ChainElements[i].Certificate.Thumbprint.ToUpperInvariant()))
                        anchorAt = i;
                }
                if (anchorAt < 0 && chain.ChainElements.Count == 0)
                    return "no certificate chain could be built for " + cert.Subject;
                if (anchorAt < 0)
                    return String.Format("the certificate {0} does not chain to a CA of the bundle (the chain ends at {1})",
                        cert.Subject, chain.ChainElements[chain.ChainElements.Count - 1].Certificate.Subject);
                // Problems above the anchor (an untrusted or missing root) do not count.
                for (int i = 0; i <= anchorAt; i++)
                {
                    foreach (X509ChainStatus status in chain.ChainElements[i].ChainElementStatus)
                    {
                        if (status.Status != X509ChainStatusFlags.NoError && status.Status != X509ChainStatusFlags.UntrustedRoot
                            && status.Status != X509ChainStatusFlags.PartialChain)
                            return String.Format("the certificate chain is not valid at {0}: {1} ({2})",
                                chain.ChainElements[i].Certificate.Subject, status.Status, status.StatusInformation.Trim());
                    }
                }
                return null;
            }
        }
    }

    /// <summary>Server identity check (RFC 6125, RFC 9110 4.3.4) against the subjectAltName only, as browsers and Python's ssl do.</summary>
    public static class HostName
    {
        /// <summary>True when the certificate names host: an IP address SAN for an address, a DNS SAN (leftmost-label wildcard allowed) for a name.</summary>
        public static bool Matches(CertFacts cert, string host)
        {
            string wanted = host.Trim('[', ']').TrimEnd('.').ToLowerInvariant();
            IPAddress address;
            if (IPAddress.TryParse(wanted, out address))
                return cert.IpAddresses.Any(ip => IPAddress.Parse(ip).Equals(address));
            foreach (string dns in cert.DnsNames)
            {
                string pattern = dns.TrimEnd('.').ToLowerInvariant();
                if (pattern == wanted)
                    return true;
                if (pattern.StartsWith("*.", StringComparison.Ordinal) && pattern.IndexOf('*', 1) < 0)
                {
                    int dot = wanted.IndexOf('.');
                    if (dot > 0 && wanted.Substring(dot) == pattern.Substring(1) && pattern.Count(c => c == '.') >= 2)
                        return true;
                }
            }
            return false;
        }
    }

    // ---------------------------------------------------------------------------------------------
    // EST over HTTPS
    // ---------------------------------------------------------------------------------------------

    /// <summary>One HTTP answer of an EST server.</summary>
    public sealed class EstAnswer
    {
        public EstAnswer(int status, string contentType, string retryAfter, byte[] body, string url)
        {
            Status = status;
            ContentType = contentType;
            RetryAfter = retryAfter;
            Body = body ?? new byte[0];
            Url = url;
        }

        public int Status { get; private set; }
        public string ContentType { get; private set; }
        /// <summary>The raw Retry-After header, or null.</summary>
        public string RetryAfter { get; private set; }
        public byte[] Body { get; private set; }
        public string Url { get; private set; }
    }

    /// <summary>The result of /simpleenroll or /simplereenroll: certificates, or pending with the server's Retry-After.</summary>
    public sealed class EnrollResult
    {
        public EnrollResult(List<byte[]> certificates, bool pending, int retryAfterSeconds, string serverText)
        {
            Certificates = certificates ?? new List<byte[]>();
            IsPending = pending;
            RetryAfterSeconds = retryAfterSeconds;
            ServerText = serverText;
        }

        /// <summary>The certificates of the answer in the order sent; use Pkcs7.FindIssued to pick the issued one.</summary>
        public List<byte[]> Certificates { get; private set; }
        public bool IsPending { get; private set; }
        /// <summary>Seconds to wait before asking again, -1 when the server gave none.</summary>
        public int RetryAfterSeconds { get; private set; }
        public string ServerText { get; private set; }
    }

    /// <summary>How EST answers are read: the same rules as the Python engine's transport and codecs.</summary>
    public static class EstAnswers
    {
        public const int MaxRetryAfter = 86400;

        private static readonly string[] Pkcs7MediaTypes =
        {
            "application/pkcs7-mime", "application/x-pkcs7-mime", "application/pkcs7-certificates", "application/x-pkcs7-certificates",
        };

        /// <summary>type/subtype of a Content-Type header in lower case, parameters dropped.</summary>
        public static string MediaType(string contentType)
        {
            if (String.IsNullOrEmpty(contentType))
                return "";
            return contentType.Split(';')[0].Trim().ToLowerInvariant();
        }

        /// <summary>The server's own words for an error: text (or no) content type only, short and printable.</summary>
        public static string ServerText(EstAnswer answer)
        {
            string media = MediaType(answer.ContentType);
            if (answer.Body.Length == 0 || !(media.Length == 0 || media.StartsWith("text/", StringComparison.Ordinal) || media.Contains("json")))
                return null;
            string text = Encoding.UTF8.GetString(answer.Body, 0, Math.Min(answer.Body.Length, 300));
            text = Regex.Replace(text, @"[\x00-\x1f\x7f]+", " ").Trim();
            return text.Length > 200 ? text.Substring(0, 200) + "..." : text;
        }

        /// <summary>Throws the EstException for an answer that is not 2xx (Python: transport._classify).</summary>
        public static void ThrowIfError(EstAnswer answer, string operation)
        {
            int status = answer.Status;
            if (status >= 200 && status < 300)
                return;
            string text = ServerText(answer);
            string suffix = text != null ? ": " + text : "";
            if (status == 401)
                throw new EstException(EstErrorKind.AuthRequired, String.Format("the server requires authentication for {0} (HTTP 401){1}",
                    operation, suffix), status, text, null);
            if (status == 403)
                throw new EstException(EstErrorKind.Forbidden, String.Format("the server refused {0} (HTTP 403){1}", operation, suffix), status, text, null);
            if (status == 404 || status == 501)
                throw new EstException(EstErrorKind.NotSupported, String.Format("the server does not support {0} at {1} (HTTP {2}){3}",
                    operation, answer.Url, status, suffix), status, text, null);
            if (status == 400 || status == 409 || status == 413 || status == 415 || status == 422)
                throw new EstException(EstErrorKind.BadRequest, String.Format("the server rejected the {0} request (HTTP {1}){2}",
                    operation, status, suffix), status, text, null);
            throw new EstException(EstErrorKind.Http, String.Format("HTTP {0} from {1}{2}", status, answer.Url, suffix), status, text, null);
        }

        /// <summary>The certificates of a 2xx certs-only answer; unexpected_content_type or bad_response otherwise.</summary>
        public static List<byte[]> Certificates(EstAnswer answer, string what)
        {
            string media = MediaType(answer.ContentType);
            // A missing type is tolerated (the body decides); a wrong one is not (an HTML login page, say).
            if (media.Length > 0 && Array.IndexOf(Pkcs7MediaTypes, media) < 0)
                throw new EstException(EstErrorKind.UnexpectedContentType, String.Format("the {0} has Content-Type {1}, not application/pkcs7-mime",
                    what, answer.ContentType), answer.Status, ServerText(answer), null);
            byte[] der = Pem.DecodeBody(answer.Body, what);
            List<byte[]> certs;
            try
            {
                certs = Pkcs7.ParseCertsOnly(der);
                foreach (byte[] cert in certs)
                    CertFacts.Parse(cert);
            }
            catch (FormatException e)
            {
                throw new EstException(EstErrorKind.BadResponse, String.Format("the {0} is not a PKCS#7 certs-only message: {1}", what, e.Message), answer.Status, null, e);
            }
            if (certs.Count == 0)
                throw new EstException(EstErrorKind.BadResponse, "the " + what + " holds no certificates");
            return certs;
        }

        /// <summary>
        /// Seconds from a Retry-After header (RFC 9110 10.2.3): ASCII digits or an HTTP-date (a past
        /// date is 0), capped at one day; -1 when missing or unreadable.
        /// </summary>
        public static int ParseRetryAfter(string value, DateTime nowUtc)
        {
            if (value == null)
                return -1;
            value = value.Trim(' ', '\t');
            if (value.Length == 0)
                return -1;
            if (value.All(c => c >= '0' && c <= '9'))
            {
                string digits = value.TrimStart('0');
                if (digits.Length == 0)
                    return 0;
                return digits.Length > 6 ? MaxRetryAfter : Math.Min(Int32.Parse(digits, CultureInfo.InvariantCulture), MaxRetryAfter);
            }
            // IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient must accept.
            string[] formats = { "r", "dddd, dd-MMM-yy HH:mm:ss 'GMT'", "ddd MMM d HH:mm:ss yyyy", "ddd MMM  d HH:mm:ss yyyy" };
            DateTime when;
            if (!DateTime.TryParseExact(value, formats, CultureInfo.InvariantCulture,
                    DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out when))
                return -1;
            double seconds = (when - nowUtc.ToUniversalTime()).TotalSeconds;
            return (int)Math.Max(0, Math.Min(Math.Round(seconds), MaxRetryAfter));
        }

        /// <summary>The result of an enrollment answer: certificates for 2xx, pending for 202, EstException otherwise.</summary>
        public static EnrollResult Enrollment(EstAnswer answer, string operation, DateTime nowUtc)
        {
            if (answer.Status == 202)
                return new EnrollResult(null, true, ParseRetryAfter(answer.RetryAfter, nowUtc), ServerText(answer));
            ThrowIfError(answer, operation);
            return new EnrollResult(Certificates(answer, "/" + operation + " answer"), false, -1, null);
        }
    }

    /// <summary>Where and how to reach an EST server.</summary>
    public sealed class EstClientOptions
    {
        public EstClientOptions()
        {
            TimeoutSeconds = 30;
        }

        /// <summary>https://host[:port], or a URL already ending in /.well-known/est.</summary>
        public string Url { get; set; }
        public string CaLabel { get; set; }
        /// <summary>Trust anchors for the server's TLS certificate (ca_path).</summary>
        public TrustBundle Trust { get; set; }
        /// <summary>TLS client certificate with its private key (mutual TLS; the credential of /simplereenroll).</summary>
        public X509Certificate2 ClientCertificate { get; set; }
        public string Username { get; set; }
        public string Password { get; set; }
        /// <summary>Limit for connecting and for each read or write, in seconds.</summary>
        public int TimeoutSeconds { get; set; }
    }

    /// <summary>
    /// An EST client (RFC 7030): TLS 1.2, the server checked against the bundle and the URL's host
    /// name, HTTP Basic sent up front, a client certificate when given. Redirects are not followed
    /// (RFC 7030 3.2.1 wants the user's say-so).
    /// Built on HttpWebRequest, not HttpClient: Mono's HttpClientHandler does not send
    /// ClientCertificates, and HttpWebRequest does the same on .NET Framework and on Mono, where
    /// the tests run. It takes its TLS versions from ServicePointManager, a process-wide setting.
    /// </summary>
    public sealed class EstClient
    {
        public const string WellKnown = "/.well-known/est";
        public const int MaxResponseBytes = 8 * 1024 * 1024;

        private readonly EstClientOptions options;

        public EstClient(EstClientOptions options)
        {
            if (options.Trust == null)
                throw new EstException(EstErrorKind.InvalidInput, "a CA bundle (ca_path) is required to check the EST server");
            this.options = options;
            BaseUrl = BuildBaseUrl(options.Url, options.CaLabel);
            // TLS 1.2 exactly: the version every EST server speaks and the one RFC 7030 3.5 channel
            // binding (tls-unique) is defined for. .NET Framework asks SChannel for TLS 1.3 only on
            // the newest Windows releases, and fails the handshake on the others when asked.
            ServicePointManager.SecurityProtocol = SecurityProtocolType.Tls12;
        }

        public string BaseUrl { get; private set; }

        /// <summary>https://host[:port]/.well-known/est[/label] (Python engine: transport.build_base_url).</summary>
        public static string BuildBaseUrl(string url, string caLabel)
        {
            if (String.IsNullOrEmpty(url))
                throw new EstException(EstErrorKind.InvalidInput, "url is required");
            Uri parsed;
            if (!Uri.TryCreate(url, UriKind.Absolute, out parsed))
                throw new EstException(EstErrorKind.InvalidInput, "url " + url + " cannot be parsed");
            if (parsed.Scheme != Uri.UriSchemeHttps)
                throw new EstException(EstErrorKind.InvalidInput, "url must use https:// (EST runs over TLS only), got " + url);
            if (parsed.Query.Length > 0 || parsed.Fragment.Length > 0)
                throw new EstException(EstErrorKind.InvalidInput, "url " + url + " must not carry a query or fragment");
            string path = parsed.AbsolutePath.TrimEnd('/');
            if (!path.EndsWith(WellKnown, StringComparison.Ordinal))
                path += WellKnown;
            if (!String.IsNullOrEmpty(caLabel))
            {
                if (caLabel.Contains("/") || caLabel == "." || caLabel == "..")
                    throw new EstException(EstErrorKind.InvalidInput, "ca_label " + caLabel + " must be a single path segment");
                path += "/" + Uri.EscapeDataString(caLabel);
            }
            return parsed.GetLeftPart(UriPartial.Authority) + path;
        }

        private string ServerProblem(string host, X509Certificate presented, X509Chain chain)
        {
            if (presented == null)
                return "the server sent no certificate";
            X509Certificate2 cert = new X509Certificate2(presented);
            CertFacts facts;
            try
            {
                facts = CertFacts.Parse(cert.RawData);
            }
            catch (FormatException e)
            {
                return "the server certificate cannot be read: " + e.Message;
            }
            // Checked here, not left to SslPolicyErrors: the same rule on every runtime (SAN only, no CN fallback).
            if (!HostName.Matches(facts, host))
                return String.Format("the server certificate ({0}) is not valid for {1}: it names {2}", facts.Subject, host,
                    facts.SubjectAltNames.Count > 0 ? String.Join(", ", facts.SubjectAltNames.ToArray()) : "no subjectAltName");
            // The chain the platform built holds what the server sent: intermediates for our own chain.
            List<X509Certificate2> sent = new List<X509Certificate2>();
            if (chain != null)
            {
                foreach (X509ChainElement element in chain.ChainElements)
                    sent.Add(element.Certificate);
            }
            string problem = options.Trust.Verify(cert, sent);
            return problem == null ? null : "the server certificate is not trusted: " + problem;
        }

        /// <summary>One request; returns any HTTP answer, throws EstException (tls, connection) when there is none.</summary>
        public EstAnswer Send(string method, string operation, byte[] der, string contentType)
        {
            string url = BaseUrl + "/" + operation;
            HttpWebRequest request = (HttpWebRequest)WebRequest.Create(url);
            request.Method = method;
            request.AllowAutoRedirect = false;
            // A TLS session per request: each gets the certificate check below, and no pooled
            // connection authenticated with one client certificate serves a request meant for another.
            request.KeepAlive = false;
            request.ServicePoint.Expect100Continue = false;
            int timeout = (options.TimeoutSeconds > 0 ? options.TimeoutSeconds : 30) * 1000;
            request.Timeout = timeout;
            request.ReadWriteTimeout = timeout;
            string host = request.RequestUri.Host;
            string tlsProblem = null;
            request.ServerCertificateValidationCallback = delegate(object sender, X509Certificate cert, X509Chain chain, SslPolicyErrors errors)
            {
                tlsProblem = ServerProblem(host, cert, chain);
                return tlsProblem == null;
            };
            if (options.ClientCertificate != null)
                request.ClientCertificates.Add(options.ClientCertificate);
            if (!String.IsNullOrEmpty(options.Username))
            {
                string pair = options.Username + ":" + (options.Password ?? "");
                request.Headers[HttpRequestHeader.Authorization] = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(pair));
            }
            try
            {
                if (der != null)
                {
                    // RFC 7030 4.2.1 sends base64 with Content-Transfer-Encoding; RFC 8951 lets receivers ignore it.
                    byte[] body = Encoding.ASCII.GetBytes(Pem.EncodeBody(der));
                    request.ContentType = contentType;
                    request.Headers["Content-Transfer-Encoding"] = "base64";
                    request.ContentLength = body.Length;
                    using (Stream stream = request.GetRequestStream())
                        stream.Write(body, 0, body.Length);
                }
                using (HttpWebResponse response = Respond(request))
                    return Read(response, url);
            }
            catch (WebException e)
            {
                throw Classify(e, url, tlsProblem);
            }
            catch (IOException e)
            {
                throw new EstException(EstErrorKind.Connection, String.Format("the answer from {0} was cut off: {1}", url, Reason(e)), 0, null, e);
            }
        }

        // The response, error statuses included (HttpWebRequest reports those as exceptions).
        private static HttpWebResponse Respond(HttpWebRequest request)
        {
            try
            {
                return (HttpWebResponse)request.GetResponse();
            }
            catch (WebException e)
            {
                HttpWebResponse response = e.Response as HttpWebResponse;
                if (e.Status == WebExceptionStatus.ProtocolError && response != null)
                    return response;
                throw;
            }
        }

        private static EstAnswer Read(HttpWebResponse response, string url)
        {
            MemoryStream body = new MemoryStream();
            using (Stream stream = response.GetResponseStream())
            {
                byte[] buffer = new byte[65536];
                int count;
                while ((count = stream.Read(buffer, 0, buffer.Length)) > 0)
                {
                    body.Write(buffer, 0, count);
                    if (body.Length > MaxResponseBytes)
                        throw new EstException(EstErrorKind.BadResponse, String.Format("the answer from {0} is larger than {1} bytes", url, MaxResponseBytes));
                }
            }
            string type = String.IsNullOrEmpty(response.ContentType) ? null : response.ContentType;
            return new EstAnswer((int)response.StatusCode, type, response.Headers["Retry-After"], body.ToArray(), url);
        }

        private EstException Classify(WebException error, string url, string tlsProblem)
        {
            if (tlsProblem != null)
                return new EstException(EstErrorKind.Tls, String.Format("TLS with {0} failed: {1}", url, tlsProblem), 0, null, error);
            if (error.Status == WebExceptionStatus.Timeout)
                return new EstException(EstErrorKind.Connection, String.Format("timed out after {0}s talking to {1}", options.TimeoutSeconds, url), 0, null, error);
            if (error.Status == WebExceptionStatus.TrustFailure || error.Status == WebExceptionStatus.SecureChannelFailure)
                return new EstException(EstErrorKind.Tls, String.Format("TLS with {0} failed: {1}", url, Reason(error)), 0, null, error);
            return new EstException(EstErrorKind.Connection, String.Format("could not talk to {0}: {1}", url, Reason(error)), 0, null, error);
        }

        // The outer message and the innermost one, which names the cause (connection refused, handshake failure, ...).
        private static string Reason(Exception error)
        {
            Exception innermost = error;
            while (innermost.InnerException != null)
                innermost = innermost.InnerException;
            SocketException socket = innermost as SocketException;
            string text = socket != null ? socket.SocketErrorCode + ": " + socket.Message : innermost.Message;
            return innermost == error ? text : error.Message + " (" + text + ")";
        }

        /// <summary>GET /cacerts (RFC 7030 4.1): the CA certificates in the order the server sent them.</summary>
        public List<byte[]> GetCaCerts()
        {
            EstAnswer answer = Send("GET", "cacerts", null, null);
            EstAnswers.ThrowIfError(answer, "cacerts");
            return EstAnswers.Certificates(answer, "/cacerts answer");
        }

        /// <summary>POST /simpleenroll (RFC 7030 4.2.1).</summary>
        public EnrollResult SimpleEnroll(byte[] csrDer)
        {
            return Enroll("simpleenroll", csrDer);
        }

        /// <summary>POST /simplereenroll (RFC 7030 4.2.2): authenticate with the current certificate (ClientCertificate).</summary>
        public EnrollResult SimpleReenroll(byte[] csrDer)
        {
            return Enroll("simplereenroll", csrDer);
        }

        private EnrollResult Enroll(string operation, byte[] csrDer)
        {
            EstAnswer answer = Send("POST", operation, csrDer, "application/pkcs10");
            return EstAnswers.Enrollment(answer, operation, DateTime.UtcNow);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // A small JSON reader for the renewal config
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// JSON (RFC 8259) to plain objects: Dictionary&lt;string, object&gt;, List&lt;object&gt;, string,
    /// double, bool, null. Written out because the renewal config wants exact error messages,
    /// and the serializers of .NET Framework silently skip unknown or mistyped keys.
    /// </summary>
    public sealed class Json
    {
        private readonly string text;
        private int pos;

        private Json(string text)
        {
            this.text = text;
        }

        public static object Parse(string text)
        {
            Json reader = new Json(text);
            object value = reader.Value(0);
            reader.SkipSpace();
            if (reader.pos != text.Length)
                throw reader.Error("unexpected text after the value");
            return value;
        }

        private FormatException Error(string message)
        {
            int line = 1;
            int column = 1;
            for (int i = 0; i < pos && i < text.Length; i++)
            {
                if (text[i] == '\n')
                {
                    line++;
                    column = 1;
                }
                else
                {
                    column++;
                }
            }
            return new FormatException(String.Format("JSON line {0} column {1}: {2}", line, column, message));
        }

        private void SkipSpace()
        {
            while (pos < text.Length && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\r' || text[pos] == '\n' || text[pos] == '\uFEFF'))
                pos++;
        }

        private object Value(int depth)
        {
            if (depth > 64)
                throw Error("nested too deeply");
            SkipSpace();
            if (pos >= text.Length)
                throw Error("a value is missing");
            char c = text[pos];
            if (c == '{')
                return ObjectValue(depth);
            if (c == '[')
                return ArrayValue(depth);
            if (c == '"')
                return StringValue();
            if (c == '-' || (c >= '0' && c <= '9'))
                return NumberValue();
            if (Literal("true"))
                return true;
            if (Literal("false"))
                return false;
            if (Literal("null"))
                return null;
            throw Error("unexpected character '" + c + "'");
        }

        private bool Literal(string word)
        {
            if (String.CompareOrdinal(text, pos, word, 0, word.Length) != 0)
                return false;
            pos += word.Length;
            return true;
        }

        private Dictionary<string, object> ObjectValue(int depth)
        {
            Dictionary<string, object> result = new Dictionary<string, object>();
            pos++;
            SkipSpace();
            if (pos < text.Length && text[pos] == '}')
            {
                pos++;
                return result;
            }
            while (true)
            {
                SkipSpace();
                if (pos >= text.Length || text[pos] != '"')
                    throw Error("a key (a string) is expected");
                string key = StringValue();
                if (result.ContainsKey(key))
                    throw Error("key \"" + key + "\" appears twice");
                SkipSpace();
                if (pos >= text.Length || text[pos] != ':')
                    throw Error("':' is expected after a key");
                pos++;
                result[key] = Value(depth + 1);
                SkipSpace();
                if (pos < text.Length && text[pos] == ',')
                {
                    pos++;
                    continue;
                }
                if (pos < text.Length && text[pos] == '}')
                {
                    pos++;
                    return result;
                }
                throw Error("',' or '}' is expected");
            }
        }

        private List<object> ArrayValue(int depth)
        {
            List<object> result = new List<object>();
            pos++;
            SkipSpace();
            if (pos < text.Length && text[pos] == ']')
            {
                pos++;
                return result;
            }
            while (true)
            {
                result.Add(Value(depth + 1));
                SkipSpace();
                if (pos < text.Length && text[pos] == ',')
                {
                    pos++;
                    continue;
                }
                if (pos < text.Length && text[pos] == ']')
                {
                    pos++;
                    return result;
                }
                throw Error("',' or ']' is expected");
            }
        }

        private string StringValue()
        {
            StringBuilder result = new StringBuilder();
            pos++;
            while (true)
            {
                if (pos >= text.Length)
                    throw Error("a string is not closed");
                char c = text[pos++];
                if (c == '"')
                    return result.ToString();
                if (c < 0x20)
                    throw Error("control character in a string");
                if (c != '\\')
                {
                    result.Append(c);
                    continue;
                }
                if (pos >= text.Length)
                    throw Error("a string is not closed");
                char escape = text[pos++];
                switch (escape)
                {
                    case '"': result.Append('"'); break;
                    case '\\': result.Append('\\'); break;
                    case '/': result.Append('/'); break;
                    case 'b': result.Append('\b'); break;
                    case 'f': result.Append('\f'); break;
                    case 'n': result.Append('\n'); break;
                    case 'r': result.Append('\r'); break;
                    case 't': result.Append('\t'); break;
                    case 'u':
                        int code;
                        if (pos + 4 > text.Length || !Int32.TryParse(text.Substring(pos, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out code))
                            throw Error("bad \\u escape");
                        result.Append((char)code);
                        pos += 4;
                        break;
                    default:
                        throw Error("bad escape \\" + escape);
                }
            }
        }

        private double NumberValue()
        {
            Match match = Regex.Match(text.Substring(pos), @"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?");
            if (!match.Success)
                throw Error("bad number");
            pos += match.Length;
            return Double.Parse(match.Value, NumberStyles.Float, CultureInfo.InvariantCulture);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Renewal on the host: config, platform interfaces, the runner
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// The renewal config, a JSON object the est_renewal role writes (no secrets: re-enrollment
    /// authenticates with the certificate being renewed):
    /// <code>
    /// {
    ///   "url": "https://est.example.com:8443",          required
    ///   "ca_label": "iot",                              optional
    ///   "ca_path": "C:\\ProgramData\\pki.est\\ca.pem",  required: trust anchors for the server (PEM, DER or PKCS#7)
    ///   "certificate": "CN=web01.example.com",          subject (stable across renewals) or SHA-1 thumbprint
    ///   "friendly_name": "pki.est web",                 instead of certificate: the newest certificate with this name
    ///   "store_location": "LocalMachine",               or "CurrentUser"
    ///   "store_name": "My",
    ///   "renew_before": "30d",                          as the Python modules take it: 30d, 12h, 90m, 600s, 33%; default a third of the lifetime
    ///   "rekey": false,                                 true: a new key for every renewal
    ///   "key_type": "rsa-2048",                         for rekey: rsa-2048/3072/4096, ec-p256/p384/p521; default that of the current key
    ///   "key_provider": "Microsoft Software Key Storage Provider",   or "Microsoft Platform Crypto Provider" (TPM)
    ///   "timeout": 30                                   seconds per HTTP request
    /// }
    /// </code>
    /// One of certificate and friendly_name is required. A thumbprint leads to the current certificate
    /// of its subject (see StoredCertificate.Select) only while the certificate it names is in the store.
    /// </summary>
    public sealed class RenewalConfig
    {
        public const string SoftwareProvider = "Microsoft Software Key Storage Provider";
        public const string PlatformProvider = "Microsoft Platform Crypto Provider";

        private static readonly string[] KeyTypes = { "rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384", "ec-p521" };

        public RenewalConfig()
        {
            StoreLocation = "LocalMachine";
            StoreName = "My";
            RenewBefore = RenewWindow.Parse(null);
            KeyProvider = SoftwareProvider;
            TimeoutSeconds = 30;
        }

        public string Url { get; set; }
        public string CaLabel { get; set; }
        public string CaPath { get; set; }
        public string Certificate { get; set; }
        public string FriendlyName { get; set; }
        public string StoreLocation { get; set; }
        public string StoreName { get; set; }
        public RenewWindow RenewBefore { get; set; }
        public bool Rekey { get; set; }
        /// <summary>Key type for rekey, or null for the type of the current key.</summary>
        public string KeyType { get; set; }
        public string KeyProvider { get; set; }
        public int TimeoutSeconds { get; set; }

        public static RenewalConfig Load(string path)
        {
            string text;
            try
            {
                text = File.ReadAllText(path, Encoding.UTF8);
            }
            catch (Exception e)
            {
                if (!(e is IOException || e is UnauthorizedAccessException || e is ArgumentException || e is NotSupportedException))
                    throw;
                throw new EstException(EstErrorKind.InvalidInput, "cannot read the config " + path + ": " + e.Message, 0, null, e);
            }
            try
            {
                return Parse(text);
            }
            catch (EstException e)
            {
                throw new EstException(EstErrorKind.InvalidInput, "config " + path + ": " + e.Message, 0, null, e);
            }
        }

        /// <summary>Reads and checks the config; EstException invalid_input names the first problem.</summary>
        public static RenewalConfig Parse(string json)
        {
            Dictionary<string, object> values;
            try
            {
                values = Json.Parse(json) as Dictionary<string, object>;
            }
            catch (FormatException e)
            {
                throw new EstException(EstErrorKind.InvalidInput, e.Message, 0, null, e);
            }
            if (values == null)
                throw new EstException(EstErrorKind.InvalidInput, "the config must be a JSON object");
            RenewalConfig config = new RenewalConfig();
            foreach (KeyValuePair<string, object> item in values)
            {
                switch (item.Key)
                {
                    case "url": config.Url = Text(item); break;
                    case "ca_label": config.CaLabel = Text(item); break;
                    case "ca_path": config.CaPath = Text(item); break;
                    case "certificate": config.Certificate = Text(item); break;
                    case "friendly_name": config.FriendlyName = Text(item); break;
                    case "store_location": config.StoreLocation = Choice(item, "LocalMachine", "CurrentUser"); break;
                    case "store_name": config.StoreName = Text(item); break;
                    case "renew_before":
                        // A number is days, as in the Python modules.
                        config.RenewBefore = RenewWindow.Parse(item.Value is double ? ((double)item.Value).ToString(CultureInfo.InvariantCulture) : Text(item));
                        break;
                    case "rekey": config.Rekey = Flag(item); break;
                    case "key_type": config.KeyType = Choice(item, KeyTypes); break;
                    case "key_provider": config.KeyProvider = Text(item); break;
                    case "timeout": config.TimeoutSeconds = Count(item); break;
                    default:
                        throw new EstException(EstErrorKind.InvalidInput, "unknown key \"" + item.Key + "\"");
                }
            }
            foreach (KeyValuePair<string, string> required in new Dictionary<string, string> { { "url", config.Url }, { "ca_path", config.CaPath } })
            {
                if (String.IsNullOrEmpty(required.Value))
                    throw new EstException(EstErrorKind.InvalidInput, "\"" + required.Key + "\" is required");
            }
            if (String.IsNullOrEmpty(config.Certificate) && String.IsNullOrEmpty(config.FriendlyName))
                throw new EstException(EstErrorKind.InvalidInput, "\"certificate\" or \"friendly_name\" is required");
            EstClient.BuildBaseUrl(config.Url, config.CaLabel);
            return config;
        }

        private static string Text(KeyValuePair<string, object> item)
        {
            string value = item.Value as string;
            if (value == null && item.Value != null)
                throw new EstException(EstErrorKind.InvalidInput, "\"" + item.Key + "\" must be a string");
            return value;
        }

        private static string Choice(KeyValuePair<string, object> item, params string[] choices)
        {
            string value = Text(item);
            string match = choices.FirstOrDefault(c => String.Equals(c, value, StringComparison.OrdinalIgnoreCase));
            if (match == null)
                throw new EstException(EstErrorKind.InvalidInput, "\"" + item.Key + "\" must be one of " + String.Join(", ", choices) + ", got " + value);
            return match;
        }

        private static bool Flag(KeyValuePair<string, object> item)
        {
            if (!(item.Value is bool))
                throw new EstException(EstErrorKind.InvalidInput, "\"" + item.Key + "\" must be true or false");
            return (bool)item.Value;
        }

        private static int Count(KeyValuePair<string, object> item)
        {
            if (!(item.Value is double) || (double)item.Value < 1 || (double)item.Value > 3600 || Math.Floor((double)item.Value) != (double)item.Value)
                throw new EstException(EstErrorKind.InvalidInput, "\"" + item.Key + "\" must be a whole number of seconds from 1 to 3600");
            return (int)(double)item.Value;
        }
    }

    /// <summary>A certificate in a store, with what the store knows about its private key.</summary>
    public sealed class StoredCertificate
    {
        public StoredCertificate(X509Certificate2 certificate, string friendlyName, bool hasPrivateKey, string keyProvider, string keyName)
        {
            Certificate = certificate;
            Facts = CertFacts.Parse(certificate.RawData);
            FriendlyName = String.IsNullOrEmpty(friendlyName) ? null : friendlyName;
            HasPrivateKey = hasPrivateKey;
            KeyProvider = keyProvider;
            KeyName = keyName;
        }

        public X509Certificate2 Certificate { get; private set; }
        public CertFacts Facts { get; private set; }
        public string FriendlyName { get; private set; }
        public bool HasPrivateKey { get; private set; }
        /// <summary>The CNG key storage provider (or CSP) holding the key, null when unknown or none.</summary>
        public string KeyProvider { get; private set; }
        public string KeyName { get; private set; }

        /// <summary>
        /// The current certificate among those a selector names: the certificates with friendlyName
        /// when one is given, else those with the subject of thumbprintOrSubject -- a thumbprint stands
        /// for its certificate's subject, so that it leads to the renewed certificate while the old one
        /// is still in the store. Of these, one with a private key before one without, then the latest
        /// notAfter, then the latest notBefore. Null when none matches.
        /// </summary>
        public static StoredCertificate Select(IEnumerable<StoredCertificate> certificates, string thumbprintOrSubject, string friendlyName)
        {
            List<StoredCertificate> all = certificates.ToList();
            IEnumerable<StoredCertificate> matches;
            if (!String.IsNullOrEmpty(friendlyName))
            {
                matches = all.Where(c => c.FriendlyName == friendlyName);
            }
            else
            {
                List<StoredCertificate> named = all.Where(c => c.Facts.Matches(thumbprintOrSubject)).ToList();
                matches = all.Where(c => named.Any(n => Der.BytesEqual(n.Facts.SubjectDer, c.Facts.SubjectDer)));
            }
            return matches.OrderByDescending(c => c.HasPrivateKey).ThenByDescending(c => c.Facts.NotAfter).ThenByDescending(c => c.Facts.NotBefore)
                .FirstOrDefault();
        }
    }

    /// <summary>A private key the client can sign with, and that a certificate can be installed onto.</summary>
    public sealed class KeyHandle
    {
        public KeyHandle(string name, AsymmetricAlgorithm key, bool created)
        {
            Name = name;
            Key = key;
            Created = created;
        }

        /// <summary>The persisted key's name in its provider (null for a key that has none).</summary>
        public string Name { get; private set; }
        public AsymmetricAlgorithm Key { get; private set; }
        /// <summary>True when this call created the key, false when an existing one was opened.</summary>
        public bool Created { get; private set; }

        public ICsrSigner Signer()
        {
            return CsrSigners.For(Key);
        }

        /// <summary>True when certDer is a certificate for this key (the same SubjectPublicKeyInfo).</summary>
        public bool Matches(byte[] certDer)
        {
            return Der.BytesEqual(CertFacts.Parse(certDer).SubjectPublicKeyInfo, Signer().SubjectPublicKeyInfo());
        }
    }

    /// <summary>A certificate store (on Windows: X509Store, LocalMachine or CurrentUser).</summary>
    public interface ICertificateStore
    {
        /// <summary>The certificates of the store (any this reader cannot parse left out).</summary>
        List<StoredCertificate> Certificates();
        /// <summary>
        /// Adds the issued certificate bound to key, named friendlyName (null: no name); returns its
        /// thumbprint. Refuses a certificate for another key; throws and changes nothing on failure.
        /// </summary>
        string Install(byte[] issuedDer, KeyHandle key, string friendlyName);
    }

    /// <summary>Where keys come from (on Windows: CNG key storage providers, software or TPM).</summary>
    public interface IKeyFactory
    {
        /// <summary>
        /// The persisted, non-exportable key called name; an existing key of that name is opened
        /// instead (a request answered 202 is sent again with the same key). keyType: rsa-2048, ec-p256, ...
        /// An existing key of another type is a key_conflict.
        /// </summary>
        KeyHandle CreatePendingKey(string name, string keyType);
        /// <summary>The private key of an installed certificate (re-enrollment with the same key).</summary>
        KeyHandle UseExistingKey(StoredCertificate certificate);
    }

    /// <summary>Where the runner reports (on Windows: the Application event log, source pki.est).</summary>
    public interface IRenewalLog
    {
        void Info(int eventId, string message);
        void Warning(int eventId, string message);
        void Error(int eventId, string message);
    }

    /// <summary>Event ids of the renewal client, for monitoring rules.</summary>
    public static class RenewalEvents
    {
        public const int NothingToDo = 1000;
        public const int Renewed = 1001;
        public const int Pending = 1002;
        public const int WouldRenew = 1003;
        public const int Failed = 2000;
        public const int CannotRenew = 2001;
        public const int ConfigError = 2002;
    }

    /// <summary>
    /// What the scheduled task runs: find the certificate, decide, and when it is due re-enroll
    /// (RFC 7030 4.2.2) over mutual TLS with it, verify the answer, then install. Nothing in the
    /// store changes unless a verified certificate is installed. The old certificate stays until it
    /// expires, as Windows autoenrollment keeps it: services bound to its thumbprint keep working
    /// until they are pointed at the new one.
    /// </summary>
    public sealed class RenewalRunner
    {
        public const int ExitOk = 0;
        public const int ExitFailed = 1;
        public const int ExitConfig = 2;
        public const int ExitPending = 3;

        /// <summary>
        /// Prefix of the names of new keys (rekey): pki-est-renew-THUMBPRINT of the certificate being
        /// renewed, so that a request answered 202 is sent again with the same key, and the next
        /// generation's key gets a name of its own.
        /// </summary>
        public const string PendingKeyPrefix = "pki-est-renew-";

        private readonly RenewalConfig config;
        private readonly ICertificateStore store;
        private readonly IKeyFactory keys;
        private readonly IRenewalLog log;

        public RenewalRunner(RenewalConfig config, ICertificateStore store, IKeyFactory keys, IRenewalLog log)
        {
            this.config = config;
            this.store = store;
            this.keys = keys;
            this.log = log;
            Clock = delegate { return DateTime.UtcNow; };
        }

        /// <summary>The time the decision is made at (tests set it).</summary>
        public Func<DateTime> Clock { get; set; }

        /// <summary>The new certificate's thumbprint after a run that renewed, else null.</summary>
        public string InstalledThumbprint { get; private set; }

        /// <summary>
        /// Exit codes: 0 nothing to do, renewed, or (check) would renew; 1 failed, nothing changed
        /// (or expired / missing: run the playbook); 2 config unusable; 3 pending at the server.
        /// </summary>
        public int Run(bool check, bool force)
        {
            StoredCertificate current;
            try
            {
                current = StoredCertificate.Select(store.Certificates(), config.Certificate, config.FriendlyName);
            }
            catch (EstException e)
            {
                return Fail(e.Kind == EstErrorKind.InvalidInput ? RenewalEvents.ConfigError : RenewalEvents.Failed, e,
                    e.Kind == EstErrorKind.InvalidInput ? ExitConfig : ExitFailed);
            }
            string where = config.StoreLocation + "\\" + config.StoreName;
            if (current == null)
            {
                log.Error(RenewalEvents.CannotRenew, String.Format("{0}: no certificate in {1}; a renewal client cannot enroll from scratch: run the playbook for this host",
                    config.FriendlyName ?? config.Certificate, where));
                return ExitFailed;
            }
            CertFacts facts = current.Facts;
            string name = facts.Subject + " (" + facts.Thumbprint + ")";
            if (!current.HasPrivateKey)
            {
                log.Error(RenewalEvents.CannotRenew, name + ": the certificate in " + where
                    + " has no private key, so it cannot authenticate a re-enrollment: run the playbook");
                return ExitFailed;
            }
            RenewalDecision decision = RenewalDecision.Decide(facts.NotBefore, facts.NotAfter, config.RenewBefore, Clock(), force);
            if (decision.Action == RenewalDecision.Expired)
            {
                log.Error(RenewalEvents.CannotRenew, name + ": " + decision.Reason + "; it cannot authenticate a re-enrollment: run the playbook");
                return ExitFailed;
            }
            if (decision.Action == RenewalDecision.None)
            {
                log.Info(RenewalEvents.NothingToDo, name + ": ok: nothing to do: " + decision.Reason);
                return ExitOk;
            }
            if (check)
            {
                log.Info(RenewalEvents.WouldRenew, name + ": due: would renew: " + decision.Reason);
                return ExitOk;
            }
            try
            {
                return Renew(current, name, decision.Reason);
            }
            catch (EstException e)
            {
                return Fail(e.Kind == EstErrorKind.InvalidInput ? RenewalEvents.ConfigError : RenewalEvents.Failed, e,
                    e.Kind == EstErrorKind.InvalidInput ? ExitConfig : ExitFailed, name);
            }
            catch (Exception e)
            {
                // A key provider or store error the platform did not classify: still one clean log line.
                log.Error(RenewalEvents.Failed, name + ": failed: " + e.GetType().Name + ": " + e.Message);
                return ExitFailed;
            }
        }

        private int Fail(int eventId, EstException e, int exitCode, string name = null)
        {
            log.Error(eventId, (name != null ? name + ": " : "") + "failed: " + e.Message + " (" + e.Kind + ")");
            return exitCode;
        }

        private int Renew(StoredCertificate current, string name, string reason)
        {
            CertFacts facts = current.Facts;
            TrustBundle trust = TrustBundle.Load(config.CaPath);
            KeyHandle key = config.Rekey
                ? keys.CreatePendingKey(PendingKeyPrefix + facts.Thumbprint, config.KeyType ?? facts.KeyType)
                : keys.UseExistingKey(current);
            ICsrSigner signer = key.Signer();
            byte[] spki = signer.SubjectPublicKeyInfo();
            byte[] csr = RenewalRequest(facts).Build(signer);

            EstClientOptions options = new EstClientOptions();
            options.Url = config.Url;
            options.CaLabel = config.CaLabel;
            options.Trust = trust;
            options.ClientCertificate = current.Certificate;
            options.TimeoutSeconds = config.TimeoutSeconds;
            EnrollResult result = new EstClient(options).SimpleReenroll(csr);
            if (result.IsPending)
            {
                log.Warning(RenewalEvents.Pending, String.Format("{0}: pending: the server accepted the re-enrollment and will decide later{1}; the next run asks again{2}",
                    name, result.RetryAfterSeconds >= 0 ? " (Retry-After " + result.RetryAfterSeconds + "s)" : "",
                    config.Rekey ? " with the same new key" : ""));
                return ExitPending;
            }

            byte[] issued = Verify(result.Certificates, spki, facts, trust);
            string thumbprint = store.Install(issued, key, current.FriendlyName);
            InstalledThumbprint = thumbprint;
            CertFacts renewed = CertFacts.Parse(issued);
            log.Info(RenewalEvents.Renewed, String.Format("{0}: renewed ({1}): {2}, serial {3}, valid until {4}, thumbprint {5}{6}",
                name, reason, renewed.Subject, renewed.Serial, renewed.NotAfterIso, thumbprint, config.Rekey ? ", new key" : ""));
            return ExitOk;
        }

        /// <summary>The re-enrollment request: the current subject and subjectAltName repeated exactly (RFC 7030 4.2.2), with its key usages.</summary>
        public static Pkcs10Builder RenewalRequest(CertFacts current)
        {
            Pkcs10Builder builder = new Pkcs10Builder().SetSubjectDer(current.SubjectDer);
            foreach (string oid in new string[] { CertFacts.SubjectAltNameOid, CertFacts.KeyUsageOid, CertFacts.ExtendedKeyUsageOid })
            {
                byte[] value;
                if (current.Extensions.TryGetValue(oid, out value))
                    builder.AddExtension(oid, current.CriticalExtensions[oid], value);
            }
            return builder;
        }

        /// <summary>The issued certificate of an answer, checked: the requested key, the same subject and names, a chain to the bundle.</summary>
        public static byte[] Verify(List<byte[]> answer, byte[] spki, CertFacts current, TrustBundle trust)
        {
            byte[] issued = Pkcs7.FindIssued(answer, spki);
            if (issued == null)
                throw new EstException(EstErrorKind.Verification, "the answer holds no certificate for the key of the request");
            CertFacts facts = CertFacts.Parse(issued);
            if (!Der.BytesEqual(facts.SubjectDer, current.SubjectDer))
                throw new EstException(EstErrorKind.Verification, String.Format("the issued certificate names {0}, not {1}", facts.Subject, current.Subject));
            List<string> missing = current.SubjectAltNames.Where(n => !facts.SubjectAltNames.Contains(n)).ToList();
            if (missing.Count > 0)
                throw new EstException(EstErrorKind.Verification, "the issued certificate lacks the subjectAltName " + String.Join(", ", missing.ToArray()));
            X509Certificate2 cert = new X509Certificate2(issued);
            List<X509Certificate2> others = answer.Where(der => der != issued).Select(der => new X509Certificate2(der)).ToList();
            string problem = trust.Verify(cert, others);
            if (problem != null)
                throw new EstException(EstErrorKind.Verification, "the issued certificate is not trusted: " + problem);
            return issued;
        }
    }
}
