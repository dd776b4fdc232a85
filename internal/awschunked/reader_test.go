package awschunked

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/crc64"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy/internal/s3err"
)

// The example credentials, time and scope of the AWS SigV4 documentation.
const (
	docAccessKey = "AKIAIOSFODNN7EXAMPLE"
	docSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	docAmzDate   = "20130524T000000Z"
	docRegion    = "us-east-1"
	docScope     = "20130524/us-east-1/s3/aws4_request"
	// testSeed is the seed signature of the documented chunked PUT.
	testSeed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
)

// docTime is docAmzDate as a time.
var docTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

// allChecksums are the trailer headers of the supported checksums.
var allChecksums = []string{
	"x-amz-checksum-crc32",
	"x-amz-checksum-crc32c",
	"x-amz-checksum-crc64nvme",
	"x-amz-checksum-sha1",
	"x-amz-checksum-sha256",
}

// hmacSHA256 returns HMAC-SHA256(key, data).
func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// testSigningKey derives a SigV4 signing key the standard way.
func testSigningKey(secret, date, region string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, "s3")
	return hmacSHA256(k, "aws4_request")
}

// docSigner returns a Signer with the documentation's key and scope.
func docSigner(seed string) *Signer {
	return &Signer{Key: testSigningKey(docSecret, "20130524", docRegion), AmzDate: docAmzDate, Scope: docScope, Prev: seed}
}

// trailerSignature signs trailer lines ("name:value\n" each) as the AWS
// documentation describes.
func trailerSignature(key []byte, prev, lines string) string {
	h := sha256.Sum256([]byte(lines))
	sts := "AWS4-HMAC-SHA256-TRAILER\n" + docAmzDate + "\n" + docScope + "\n" + prev + "\n" + hex.EncodeToString(h[:])
	return hex.EncodeToString(hmacSHA256(key, sts))
}

// chunkSignature signs a chunk with the string to sign of the AWS documentation.
func chunkSignature(key []byte, prev string, data []byte) string {
	h := sha256.Sum256(data)
	e := sha256.Sum256(nil)
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + docAmzDate + "\n" + docScope + "\n" + prev + "\n" + hex.EncodeToString(e[:]) + "\n" + hex.EncodeToString(h[:])
	return hex.EncodeToString(hmacSHA256(key, sts))
}

// oracleChecksum is the base64 trailer value of p, from independent code.
func oracleChecksum(t testing.TB, header string, p []byte) string {
	var sum []byte
	switch header {
	case "x-amz-checksum-crc32":
		sum = binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(p))
	case "x-amz-checksum-crc32c":
		sum = binary.BigEndian.AppendUint32(nil, crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)))
	case "x-amz-checksum-crc64nvme":
		sum = binary.BigEndian.AppendUint64(nil, crc64NVMEBitwise(p))
	case "x-amz-checksum-sha1":
		s := sha1.Sum(p)
		sum = s[:]
	case "x-amz-checksum-sha256":
		s := sha256.Sum256(p)
		sum = s[:]
	default:
		t.Fatalf("no oracle for %q", header)
	}
	return base64.StdEncoding.EncodeToString(sum)
}

// wireOpts shapes a test body.
type wireOpts struct {
	Signed    bool   // chunk signatures, made by aws-sdk-go-v2's stream signer
	token     bool   // signed, but decoded without verifying (sig nil)
	Trailer   string // checksum trailer header; "" for none
	chunkSize int
	seed      string // seed signature; testSeed when ""
}

// wire is an encoded aws-chunked body and where its parts are.
type wire struct {
	body      []byte
	payload   []byte
	opts      Options
	frames    [][2]int // [start, end) of each data chunk's frame (size line to CRLF)
	data      [][2]int // [start, end) of each data chunk's data
	sigs      []string // chunk signatures, the final chunk's last
	finalAt   int      // offset of the final chunk's size line
	checksum  string   // base64 trailer value
	trailerAt int      // offset of the trailer lines
	trailSig  string   // trailer signature
}

// encodeWire encodes payload as aws-chunked, the way AWS documents it: chunk
// signatures from aws-sdk-go-v2's v4.StreamSigner, the trailer signature from
// trailerSignature.
func encodeWire(t testing.TB, payload []byte, o wireOpts) *wire {
	t.Helper()
	if o.seed == "" {
		o.seed = testSeed
	}
	if o.chunkSize == 0 {
		o.chunkSize = 64 << 10
	}
	w := &wire{payload: payload, opts: Options{Signed: o.Signed, Trailer: o.Trailer, DecodedLength: int64(len(payload))}}
	if o.Signed && !o.token {
		w.opts.Signer = docSigner(o.seed)
	}
	seedRaw, err := hex.DecodeString(o.seed)
	require.NoError(t, err)
	ss := v4.NewStreamSigner(aws.Credentials{AccessKeyID: docAccessKey, SecretAccessKey: docSecret}, "s3", docRegion, seedRaw)
	sign := func(data []byte) string {
		sig, err := ss.GetSignature(context.Background(), nil, data, docTime)
		require.NoError(t, err)
		s := hex.EncodeToString(sig)
		w.sigs = append(w.sigs, s)
		return s
	}
	var b bytes.Buffer
	for off := 0; off < len(payload); off += o.chunkSize {
		chunk := payload[off:min(off+o.chunkSize, len(payload))]
		start := b.Len()
		fmt.Fprintf(&b, "%x", len(chunk))
		if o.Signed {
			b.WriteString(";chunk-signature=" + sign(chunk))
		}
		b.WriteString("\r\n")
		w.data = append(w.data, [2]int{b.Len(), b.Len() + len(chunk)})
		b.Write(chunk)
		b.WriteString("\r\n")
		w.frames = append(w.frames, [2]int{start, b.Len()})
	}
	w.finalAt = b.Len()
	b.WriteString("0")
	if o.Signed {
		b.WriteString(";chunk-signature=" + sign(nil))
	}
	b.WriteString("\r\n")
	w.trailerAt = b.Len()
	if o.Trailer != "" {
		w.checksum = oracleChecksum(t, o.Trailer, payload)
		line := o.Trailer + ":" + w.checksum
		b.WriteString(line + "\r\n")
		if o.Signed {
			w.trailSig = trailerSignature(docSigner("").Key, w.sigs[len(w.sigs)-1], line+"\n")
			b.WriteString("x-amz-trailer-signature:" + w.trailSig + "\r\n")
		}
	}
	b.WriteString("\r\n")
	w.body = b.Bytes()
	return w
}

// drain reads r to its first error with reads of bufSize bytes.
func drain(r io.Reader, bufSize int) ([]byte, error) {
	var out []byte
	buf := make([]byte, bufSize)
	idle := 0
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
		if n == 0 {
			if idle++; idle > 100 {
				return out, errors.New("no progress")
			}
		} else {
			idle = 0
		}
	}
}

// requireChunkError checks that err is an *s3err.Error with the given code.
func requireChunkError(t testing.TB, err error, code string) *s3err.Error {
	t.Helper()
	require.Error(t, err)
	require.NotErrorIs(t, err, io.EOF)
	var e *s3err.Error
	require.ErrorAs(t, err, &e, "error %v is no *s3err.Error", err)
	require.Equal(t, code, e.Code, "error %v", err)
	return e
}

// decode decodes body and checks that after the first error the reader keeps
// returning it.
func decode(t testing.TB, body []byte, o Options, bufSize int) ([]byte, error) {
	t.Helper()
	r := NewReader(bytes.NewReader(body), o)
	out, err := drain(r, bufSize)
	n, again := r.Read(make([]byte, 8))
	require.Zero(t, n)
	require.Equal(t, err, again, "the error must be sticky")
	return out, err
}

// randomPayload returns n reproducible random bytes.
func randomPayload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// TestChunkedDocExamples decodes the two chunked PUT examples of the AWS
// documentation, whose signatures AWS published.
func TestChunkedDocExamples(t *testing.T) {
	payload := bytes.Repeat([]byte{'a'}, 66560)
	key := testSigningKey(docSecret, "20130524", docRegion)
	body := func(sigs [3]string, final string) []byte {
		return []byte("10000;chunk-signature=" + sigs[0] + "\r\n" + string(payload[:65536]) + "\r\n" +
			"400;chunk-signature=" + sigs[1] + "\r\n" + string(payload[65536:]) + "\r\n" +
			"0;chunk-signature=" + sigs[2] + "\r\n" + final)
	}

	t.Run("signed", func(t *testing.T) {
		sigs := [3]string{
			"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
			"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
			"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
		}
		sig := docSigner(testSeed)
		out, err := decode(t, body(sigs, "\r\n"), Options{Signed: true, Signer: sig, DecodedLength: 66560}, 32<<10)
		require.ErrorIs(t, err, io.EOF)
		require.Equal(t, payload, out)
		require.Equal(t, testSeed, sig.Prev, "the caller's seed stays as is")

		// The oracles reproduce the documented chunk signatures.
		w := encodeWire(t, payload, wireOpts{Signed: true})
		require.Equal(t, sigs[:], w.sigs)
		prev := testSeed
		for i, c := range [][]byte{payload[:65536], payload[65536:], nil} {
			prev = chunkSignature(key, prev, c)
			require.Equal(t, sigs[i], prev)
		}
	})

	t.Run("signed trailer", func(t *testing.T) {
		seed := "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
		sigs := [3]string{
			"b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
			"1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
			"2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
		}
		trailer := "x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n"
		require.Equal(t, "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435",
			trailerSignature(key, sigs[2], "x-amz-checksum-crc32c:sOO8/Q==\n"))
		require.Equal(t, "sOO8/Q==", oracleChecksum(t, "x-amz-checksum-crc32c", payload))
		o := Options{Signed: true, Signer: docSigner(seed), Trailer: "x-amz-checksum-crc32c", DecodedLength: 66560}
		for name, final := range map[string]string{
			"as documented":       trailer + "\r\n",
			"no final CRLF":       trailer,
			"blank line first":    "\r\n" + trailer + "\r\n",
			"minio-go line ends":  strings.Replace(trailer, "==\r\n", "==\n\r\n", 1) + "\r\n",
			"bare LF line ending": strings.ReplaceAll(trailer, "\r\n", "\n") + "\n",
		} {
			t.Run(name, func(t *testing.T) {
				out, err := decode(t, body(sigs, final), o, 32<<10)
				require.ErrorIs(t, err, io.EOF)
				require.Equal(t, payload, out)
			})
		}
		bad := strings.Replace(trailer, "sOO8/Q==", "AAAAAA==", 1)
		_, err := decode(t, body(sigs, bad+"\r\n"), o, 32<<10)
		requireChunkError(t, err, "SignatureDoesNotMatch")
	})
}

// TestChunkSignatureOracles checks the test's own signer against
// aws-sdk-go-v2's stream signer on random chunks.
func TestChunkSignatureOracles(t *testing.T) {
	key := testSigningKey(docSecret, "20130524", docRegion)
	for i, n := range []int{0, 1, 100, 8192, 65536, 100000} {
		payload := randomPayload(n, uint64(i))
		w := encodeWire(t, payload, wireOpts{Signed: true, chunkSize: 4096})
		prev := testSeed
		off := 0
		for j, sig := range w.sigs {
			end := min(off+4096, n)
			if j == len(w.sigs)-1 {
				end = off
			}
			prev = chunkSignature(key, prev, payload[off:end])
			require.Equal(t, sig, prev, "chunk %d of %d bytes", j, n)
			off = end
		}
	}
}

// crc64NVMEBitwise is CRC-64/NVME computed a bit at a time from its
// definition (reflected, polynomial 0xad93d23594c935a9 reversed, initial value
// and final xor all ones): an oracle that shares no table with the code under
// test, nor with hash/crc64.
func crc64NVMEBitwise(p []byte) uint64 {
	crc := ^uint64(0)
	for _, b := range p {
		crc ^= uint64(b)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ 0x9a6c9329ac4bc9b5
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

// TestCRC64NVME checks the CRC-64/NVME hash against the catalogue's check
// value, the bitwise definition and hash/crc64 with the polynomial's table.
func TestCRC64NVME(t *testing.T) {
	// The check value of CRC-64/NVME, of "123456789" (the CRC RevEng
	// catalogue of parametrised CRC algorithms).
	require.Equal(t, uint64(0xae8b14860a799888), crc64NVMEBitwise([]byte("123456789")))
	h := newCRC64NVME()
	h.Write([]byte("123456789"))
	require.Equal(t, uint64(0xae8b14860a799888), h.(interface{ Sum64() uint64 }).Sum64())
	std := crc64.MakeTable(0x9a6c9329ac4bc9b5)
	for n := range 300 {
		p := randomPayload(n*37, uint64(n))
		h := newCRC64NVME()
		// Feed in uneven pieces to cross the 8-byte loop.
		for q := p; len(q) > 0; {
			k := min(len(q), 1+n%13)
			h.Write(q[:k])
			q = q[k:]
		}
		want := crc64NVMEBitwise(p)
		require.Equal(t, want, h.(interface{ Sum64() uint64 }).Sum64(), "length %d", len(p))
		require.Equal(t, want, crc64.Checksum(p, std))
		require.Equal(t, binary.BigEndian.AppendUint64(nil, want), h.Sum(nil))
		h.Reset()
		h.Write(p)
		require.Equal(t, want, h.(interface{ Sum64() uint64 }).Sum64())
	}
	require.Equal(t, 8, newCRC64NVME().Size())
	require.Equal(t, 1, newCRC64NVME().BlockSize())
}

// TestChunkedValid decodes well-formed bodies of every mode, checksum,
// chunk size and payload size, read in various ways.
func TestChunkedValid(t *testing.T) {
	type mode struct {
		name string
		o    wireOpts
	}
	var modes []mode
	modes = append(modes, mode{"unsigned", wireOpts{}})
	for _, c := range allChecksums {
		modes = append(modes, mode{"unsigned " + c, wireOpts{Trailer: c}})
	}
	modes = append(modes, mode{"signed", wireOpts{Signed: true}}, mode{"signed token", wireOpts{Signed: true, token: true}})
	for _, c := range allChecksums {
		modes = append(modes, mode{"signed " + c, wireOpts{Signed: true, Trailer: c}})
	}
	modes = append(modes, mode{"signed token crc32", wireOpts{Signed: true, token: true, Trailer: "x-amz-checksum-crc32"}})

	sizes := map[int][]int{
		64 << 10: {0, 1, 65535, 65536, 3*65536 + 17, 1<<20 + 5},
		1 << 20:  {0, 1 << 20, 2<<20 + 3},
	}
	for _, m := range modes {
		for chunk, lens := range sizes {
			for _, n := range lens {
				t.Run(fmt.Sprintf("%s/chunk=%d/len=%d", m.name, chunk, n), func(t *testing.T) {
					o := m.o
					o.chunkSize = chunk
					w := encodeWire(t, randomPayload(n, uint64(n)), o)
					for _, bufSize := range []int{4096, 32 << 10, 3 << 20} {
						out, err := decode(t, w.body, w.opts, bufSize)
						require.ErrorIs(t, err, io.EOF)
						require.True(t, bytes.Equal(w.payload, out), "payload differs (buffer %d)", bufSize)
					}
					// Without x-amz-decoded-content-length (unseekable bodies).
					unknown := w.opts
					unknown.DecodedLength = -1
					out, err := decode(t, w.body, unknown, 32<<10)
					require.ErrorIs(t, err, io.EOF)
					require.True(t, bytes.Equal(w.payload, out))
				})
			}
		}
	}

	t.Run("odd readers", func(t *testing.T) {
		for _, c := range []string{"", "x-amz-checksum-sha256"} {
			for _, signed := range []bool{false, true} {
				w := encodeWire(t, randomPayload(70000, 1), wireOpts{Signed: signed, Trailer: c, chunkSize: 8192})
				for name, wrap := range map[string]func(io.Reader) io.Reader{
					"one byte": iotest.OneByteReader,
					"half":     iotest.HalfReader,
					"data+EOF": iotest.DataErrReader,
				} {
					for _, bufSize := range []int{1, 7, 8192, 100000} {
						r := NewReader(wrap(bytes.NewReader(w.body)), w.opts)
						out, err := drain(r, bufSize)
						require.ErrorIs(t, err, io.EOF, "%s, buffer %d", name, bufSize)
						require.True(t, bytes.Equal(w.payload, out), "%s, buffer %d", name, bufSize)
					}
				}
			}
		}
	})

	t.Run("iotest.TestReader", func(t *testing.T) {
		w := encodeWire(t, randomPayload(20000, 2), wireOpts{Signed: true, Trailer: "x-amz-checksum-crc64nvme", chunkSize: 3000})
		require.NoError(t, iotest.TestReader(NewReader(bytes.NewReader(w.body), w.opts), w.payload))
	})
}

// TestChunkedEdgeCases covers the shapes real clients and broken or hostile
// ones send.
func TestChunkedEdgeCases(t *testing.T) {
	const hello = "hello world" // 0xb bytes
	crc := oracleChecksum(t, "x-amz-checksum-crc32", []byte(hello))
	sha := oracleChecksum(t, "x-amz-checksum-sha256", []byte(hello))
	withCRC := func(n int64) Options {
		return Options{Trailer: "x-amz-checksum-crc32", DecodedLength: n}
	}
	plain := func(n int64) Options { return Options{DecodedLength: n} }
	trailer := "x-amz-checksum-crc32:" + crc + "\r\n"
	full := "b\r\nhello world\r\n0\r\n" + trailer + "\r\n"

	cases := []struct {
		name string
		body string
		o    Options
		code string // expected S3 error code; "" for success with payload hello (or "" when empty is set)
		msg  string // part of the message, if any
		empt bool   // success with an empty payload
	}{
		{name: "unsigned trailer", body: full, o: withCRC(11)},
		{name: "no final CRLF after the trailer", body: "b\r\nhello world\r\n0\r\n" + trailer, o: withCRC(11)},
		{name: "no final CRLF after the final chunk", body: "b\r\nhello world\r\n0\r\n", o: plain(11)},
		{name: "final CRLF only", body: "b\r\nhello world\r\n0\r\n\r\n", o: plain(11)},
		{name: "bare LF lines", body: "b\nhello world\r\n0\n" + strings.TrimSuffix(trailer, "\r\n") + "\n\n", o: withCRC(11)},
		{name: "minio-go trailer line ends", body: "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:" + crc + "\n\r\n\r\n", o: withCRC(11)},
		{name: "blank line before the trailer", body: "b\r\nhello world\r\n0\r\n\r\n" + trailer + "\r\n", o: withCRC(11)},
		{name: "trailer name case and spaces", body: "b\r\nhello world\r\n0\r\nX-Amz-Checksum-CRC32 :  " + crc + " \r\n\r\n", o: withCRC(11)},
		{name: "declared trailer upper-case", body: full, o: Options{Trailer: "X-Amz-Checksum-Crc32", DecodedLength: 11}},
		{name: "trailer signature in an unsigned body", body: "b\r\nhello world\r\n0\r\n" + trailer + "x-amz-trailer-signature:zz\r\n\r\n", o: withCRC(11)},
		{name: "chunk-signature extension on unsigned chunks", body: "b;chunk-signature=abc\r\nhello world\r\n0;chunk-signature=def\r\n" + trailer + "\r\n", o: withCRC(11)},
		{name: "other chunk extensions", body: "b;foo=bar;baz\r\nhello world\r\n0;x=\"y\"\r\n" + trailer + "\r\n", o: withCRC(11)},
		{name: "upper-case hex and leading zeros", body: "000B\r\nhello world\r\n00\r\n\r\n", o: plain(11)},
		{name: "spaces around the size", body: "b \t;a=b\r\nhello world\r\n 0 \r\n\r\n", o: plain(11)},
		{name: "several chunks", body: "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n" + trailer + "\r\n", o: withCRC(11)},
		{name: "empty payload", body: "0\r\n\r\n", o: plain(0), empt: true},
		{name: "empty payload with trailer", body: "0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", o: withCRC(0), empt: true},
		{name: "empty payload, unknown length", body: "0\r\n", o: plain(-1), empt: true},

		{name: "trailer declared but absent", body: "b\r\nhello world\r\n0\r\n\r\n", o: withCRC(11), code: "MalformedTrailerError", msg: "x-amz-checksum-crc32 trailer"},
		{name: "trailer declared, body ends after final chunk", body: "b\r\nhello world\r\n0\r\n", o: withCRC(11), code: "IncompleteBody", msg: "before its declared trailer"},
		{name: "empty body", body: "", o: plain(11), code: "IncompleteBody"},
		{name: "no final chunk", body: "b\r\nhello world\r\n", o: plain(11), code: "IncompleteBody"},
		{name: "truncated inside data", body: "b\r\nhello", o: plain(11), code: "IncompleteBody"},
		{name: "no CRLF after data at the end", body: "b\r\nhello world", o: plain(11), code: "IncompleteBody"},
		{name: "half CRLF after data at the end", body: "b\r\nhello world\r", o: plain(11), code: "IncompleteBody"},
		{name: "size line cut", body: "b", o: plain(11), code: "IncompleteBody"},
		{name: "final size line cut", body: "b\r\nhello world\r\n0", o: plain(11), code: "IncompleteBody"},
		{name: "trailer line cut", body: "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:" + crc, o: withCRC(11), code: "IncompleteBody"},
		{name: "size larger than data, length unknown", body: "ff\r\nhello world\r\n0\r\n\r\n", o: plain(-1), code: "IncompleteBody"},
		{name: "size larger than the declared length", body: "ff\r\nhello world\r\n0\r\n\r\n", o: plain(11), code: "IncompleteBody", msg: "more data"},
		{name: "data longer than the size", body: "5\r\nhello world\r\n0\r\n\r\n", o: plain(-1), code: "InvalidRequest", msg: "CRLF"},
		{name: "data longer than the size, length set", body: "5\r\nhello world\r\n0\r\n\r\n", o: plain(11), code: "InvalidRequest", msg: "CRLF"},
		{name: "LF only after data", body: "b\r\nhello world\n0\r\n\r\n", o: plain(11), code: "InvalidRequest", msg: "CRLF"},
		{name: "fewer bytes than the declared length", body: full, o: withCRC(12), code: "IncompleteBody", msg: "x-amz-decoded-content-length"},
		{name: "more bytes than the declared length", body: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", o: plain(10), code: "IncompleteBody", msg: "more data"},
		{name: "hex garbage", body: "1g\r\nhello world\r\n0\r\n\r\n", o: plain(-1), code: "InvalidRequest", msg: "chunk size"},
		{name: "negative size", body: "-b\r\nhello world\r\n0\r\n\r\n", o: plain(-1), code: "InvalidRequest", msg: "chunk size"},
		{name: "0x prefix", body: "0xb\r\nhello world\r\n0\r\n\r\n", o: plain(-1), code: "InvalidRequest", msg: "chunk size"},
		{name: "space inside the size", body: "1 1\r\nhello world\r\n0\r\n\r\n", o: plain(-1), code: "InvalidRequest", msg: "chunk size"},
		{name: "empty size", body: "\r\nhello world\r\n0\r\n\r\n", o: plain(-1), code: "InvalidRequest", msg: "chunk size"},
		{name: "extension only", body: ";a=b\r\nhello world\r\n0\r\n\r\n", o: plain(-1), code: "InvalidRequest", msg: "chunk size"},
		{name: "absurd size", body: "ffffffffffffffffffffffff\r\nhello world\r\n0\r\n\r\n", o: plain(-1), code: "InvalidRequest", msg: "too large"},
		{name: "max int64 size", body: "7fffffffffffffff\r\nhello world\r\n0\r\n\r\n", o: plain(-1), code: "InvalidRequest", msg: "too large"},
		{name: "size just over 5 TiB", body: fmt.Sprintf("%x\r\nhello world\r\n0\r\n\r\n", 5<<40+1), o: plain(-1), code: "InvalidRequest", msg: "too large"},
		{name: "huge size, short body", body: fmt.Sprintf("%x\r\nhello world\r\n0\r\n\r\n", 5<<40), o: plain(-1), code: "IncompleteBody"},
		{name: "size line too long", body: "b;" + strings.Repeat("x", 5000) + "\r\nhello world\r\n0\r\n\r\n", o: plain(11), code: "InvalidRequest", msg: "too long"},
		{name: "endless size line", body: strings.Repeat("1", 100000), o: plain(-1), code: "InvalidRequest", msg: "too long"},
		{name: "trailer line too long", body: "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:" + strings.Repeat("A", 5000) + "\r\n\r\n", o: withCRC(11), code: "InvalidRequest", msg: "too long"},
		{name: "trailer section too long", body: "b\r\nhello world\r\n0\r\n" + strings.Repeat("\r\n", 10000), o: withCRC(11), code: "MalformedTrailerError", msg: "too long"},
		{name: "undeclared trailer", body: full, o: plain(11), code: "MalformedTrailerError", msg: "declare"},
		{name: "another trailer than declared", body: "b\r\nhello world\r\n0\r\nx-amz-checksum-sha256:" + sha + "\r\n\r\n", o: withCRC(11), code: "MalformedTrailerError", msg: "declare"},
		{name: "unsupported declared trailer", body: full, o: Options{Trailer: "x-amz-checksum-crc16", DecodedLength: 11}, code: "InvalidArgument", msg: "x-amz-checksum-crc16"},
		{name: "non-checksum declared trailer", body: full, o: Options{Trailer: "content-md5", DecodedLength: 11}, code: "InvalidArgument"},
		{name: "duplicate trailer", body: "b\r\nhello world\r\n0\r\n" + trailer + trailer + "\r\n", o: withCRC(11), code: "MalformedTrailerError", msg: "twice"},
		{name: "trailer without colon", body: "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32=" + crc + "\r\n\r\n", o: withCRC(11), code: "MalformedTrailerError", msg: "colon"},
		{name: "checksum not base64", body: "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:!!!!!!==\r\n\r\n", o: withCRC(11), code: "InvalidRequest", msg: "Value for x-amz-checksum-crc32"},
		{name: "checksum of the wrong length", body: "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:" + sha + "\r\n\r\n", o: withCRC(11), code: "InvalidRequest", msg: "Value for x-amz-checksum-crc32"},
		{name: "checksum without padding", body: "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:" + strings.TrimRight(crc, "=") + "\r\n\r\n", o: withCRC(11), code: "InvalidRequest", msg: "Value for"},
		{name: "empty checksum", body: "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:\r\n\r\n", o: withCRC(11), code: "InvalidRequest", msg: "Value for"},
		{name: "checksum mismatch", body: "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", o: withCRC(11), code: "BadDigest", msg: "The CRC32 you specified"},
		{name: "data after the end", body: "b\r\nhello world\r\n0\r\n\r\ngarbage\r\n", o: plain(11), code: "MalformedTrailerError"},
		{name: "chunk after the final chunk", body: "b\r\nhello world\r\n0\r\n\r\n5\r\nhello\r\n0\r\n\r\n", o: plain(11), code: "MalformedTrailerError"},
		{name: "signature on an unsigned trailer body is no trailer", body: "b\r\nhello world\r\n0\r\nx-amz-trailer-signature:abc\r\n\r\n", o: withCRC(11), code: "MalformedTrailerError", msg: "lacks"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, bufSize := range []int{1, 5, 4096} {
				out, err := decode(t, []byte(tc.body), tc.o, bufSize)
				if tc.code == "" {
					require.ErrorIs(t, err, io.EOF)
					want := hello
					if tc.empt {
						want = ""
					}
					require.Equal(t, want, string(out))
					continue
				}
				e := requireChunkError(t, err, tc.code)
				if tc.msg != "" {
					require.Contains(t, e.Error(), tc.msg)
				}
				if tc.o.DecodedLength >= 0 {
					require.LessOrEqual(t, int64(len(out)), tc.o.DecodedLength)
				}
				require.Contains(t, tc.body, string(out))
			}
		})
	}
}

// TestChunkedSignedEdgeCases covers signed bodies: signature format, chaining
// and the signed trailer.
func TestChunkedSignedEdgeCases(t *testing.T) {
	payload := randomPayload(3*1000+10, 3)
	plainW := encodeWire(t, payload, wireOpts{Signed: true, chunkSize: 1000})
	trailW := encodeWire(t, payload, wireOpts{Signed: true, chunkSize: 1000, Trailer: "x-amz-checksum-crc32"})
	token := func(o Options) Options { o.Signer = nil; return o }
	replace := func(w *wire, old, new string) []byte {
		require.Contains(t, string(w.body), old)
		return bytes.Replace(w.body, []byte(old), []byte(new), 1)
	}
	sig1 := plainW.sigs[1]
	trailLine := "x-amz-checksum-crc32:" + trailW.checksum + "\r\n"
	sigLine := "x-amz-trailer-signature:" + trailW.trailSig + "\r\n"

	cases := []struct {
		name string
		body []byte
		o    Options
		code string // "" for success
	}{
		{"valid", plainW.body, plainW.opts, ""},
		{"valid token mode", plainW.body, token(plainW.opts), ""},
		{"no final CRLF", plainW.body[:len(plainW.body)-2], plainW.opts, ""},
		{"upper-case signature", replace(plainW, sig1, strings.ToUpper(sig1)), plainW.opts, ""},
		{"upper-case seed", plainW.body, Options{Signed: true, Signer: docSigner(strings.ToUpper(testSeed)), DecodedLength: plainW.opts.DecodedLength}, ""},
		{"other extension before the signature", replace(plainW, "3e8;chunk-signature="+sig1, "3e8;foo=bar;chunk-signature="+sig1), plainW.opts, ""},
		{"missing chunk-signature", replace(plainW, "3e8;chunk-signature="+sig1, "3e8"), plainW.opts, "SignatureDoesNotMatch"},
		{"missing chunk-signature, token mode", replace(plainW, "3e8;chunk-signature="+sig1, "3e8"), token(plainW.opts), "SignatureDoesNotMatch"},
		{"missing final chunk-signature", replace(plainW, "0;chunk-signature="+plainW.sigs[len(plainW.sigs)-1], "0"), plainW.opts, "SignatureDoesNotMatch"},
		{"short chunk-signature", replace(plainW, sig1, sig1[:63]), plainW.opts, "SignatureDoesNotMatch"},
		{"long chunk-signature", replace(plainW, sig1, sig1+"0"), plainW.opts, "SignatureDoesNotMatch"},
		{"non-hex chunk-signature", replace(plainW, sig1, "zz"+sig1[2:]), plainW.opts, "SignatureDoesNotMatch"},
		{"non-hex chunk-signature, token mode", replace(plainW, sig1, "zz"+sig1[2:]), token(plainW.opts), "SignatureDoesNotMatch"},
		{"duplicate chunk-signature", replace(plainW, sig1, sig1+";chunk-signature="+sig1), plainW.opts, "SignatureDoesNotMatch"},
		{"empty chunk-signature", replace(plainW, sig1, ""), plainW.opts, "SignatureDoesNotMatch"},
		{"another chunk's signature", replace(plainW, sig1, plainW.sigs[0]), plainW.opts, "SignatureDoesNotMatch"},
		{"another chunk's signature, token mode", replace(plainW, sig1, plainW.sigs[0]), token(plainW.opts), ""},
		{"wrong seed", plainW.body, Options{Signed: true, Signer: docSigner(strings.Repeat("0", 64)), DecodedLength: plainW.opts.DecodedLength}, "SignatureDoesNotMatch"},
		{"malformed seed", plainW.body, Options{Signed: true, Signer: docSigner("abc"), DecodedLength: plainW.opts.DecodedLength}, "SignatureDoesNotMatch"},
		{"wrong key", plainW.body, Options{Signed: true, Signer: &Signer{Key: testSigningKey("other", "20130524", docRegion), AmzDate: docAmzDate, Scope: docScope, Prev: testSeed}, DecodedLength: plainW.opts.DecodedLength}, "SignatureDoesNotMatch"},
		{"wrong date", plainW.body, Options{Signed: true, Signer: &Signer{Key: docSigner("").Key, AmzDate: "20130524T000001Z", Scope: docScope, Prev: testSeed}, DecodedLength: plainW.opts.DecodedLength}, "SignatureDoesNotMatch"},
		{"wrong scope", plainW.body, Options{Signed: true, Signer: &Signer{Key: docSigner("").Key, AmzDate: docAmzDate, Scope: "20130524/eu-west-1/s3/aws4_request", Prev: testSeed}, DecodedLength: plainW.opts.DecodedLength}, "SignatureDoesNotMatch"},
		{"trailer signature on a body without trailer", append(plainW.body[:len(plainW.body)-2:len(plainW.body)-2], "x-amz-trailer-signature:"+strings.Repeat("0", 64)+"\r\n\r\n"...), plainW.opts, "MalformedTrailerError"},

		{"trailer valid", trailW.body, trailW.opts, ""},
		{"trailer valid, token mode", trailW.body, token(trailW.opts), ""},
		{"trailer no final CRLF", trailW.body[:len(trailW.body)-2], trailW.opts, ""},
		{"trailer minio-go line ends", replace(trailW, trailLine, strings.TrimSuffix(trailLine, "\r\n")+"\n\r\n"), trailW.opts, ""},
		{"trailer after a blank line", replace(trailW, trailLine, "\r\n"+trailLine), trailW.opts, ""},
		{"trailer declared but absent", replace(trailW, trailLine+sigLine, ""), trailW.opts, "MalformedTrailerError"},
		{"trailer declared but absent, end of body", trailW.body[:trailW.trailerAt], trailW.opts, "IncompleteBody"},
		{"trailer signature missing", replace(trailW, sigLine, ""), trailW.opts, "SignatureDoesNotMatch"},
		{"trailer signature missing, end of body", []byte(strings.TrimSuffix(string(replace(trailW, sigLine, "")), "\r\n")), trailW.opts, "IncompleteBody"},
		{"trailer signature cut", []byte(strings.TrimSuffix(string(replace(trailW, sigLine, "")), "\r\n") + sigLine[:30]), trailW.opts, "IncompleteBody"},
		{"trailer signature missing, token mode", replace(trailW, sigLine, ""), token(trailW.opts), "SignatureDoesNotMatch"},
		{"trailer signature before the checksum", replace(trailW, trailLine+sigLine, sigLine+trailLine), trailW.opts, "MalformedTrailerError"},
		{"header after the trailer signature", replace(trailW, sigLine, sigLine+trailLine), trailW.opts, "MalformedTrailerError"},
		{"trailer signature malformed", replace(trailW, trailW.trailSig, trailW.trailSig[:60]), trailW.opts, "SignatureDoesNotMatch"},
		{"trailer signature tampered", replace(trailW, trailW.trailSig, flipHex(trailW.trailSig, 10)), trailW.opts, "SignatureDoesNotMatch"},
		{"trailer signature tampered, token mode", replace(trailW, trailW.trailSig, flipHex(trailW.trailSig, 10)), token(trailW.opts), ""},
		{"trailer value tampered", replace(trailW, trailW.checksum, "AAAAAA=="), trailW.opts, "SignatureDoesNotMatch"},
		{"trailer value tampered, token mode", replace(trailW, trailW.checksum, "AAAAAA=="), token(trailW.opts), "BadDigest"},
		{"trailer signature is the final chunk's", replace(trailW, trailW.trailSig, trailW.sigs[len(trailW.sigs)-1]), trailW.opts, "SignatureDoesNotMatch"},
		{"trailer signed as a chunk", replace(trailW, trailW.trailSig, chunkSignature(docSigner("").Key, trailW.sigs[len(trailW.sigs)-1], []byte(strings.TrimSuffix(trailLine, "\r\n")+"\n"))), trailW.opts, "SignatureDoesNotMatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := decode(t, tc.body, tc.o, 700)
			if tc.code == "" {
				require.ErrorIs(t, err, io.EOF)
				require.Equal(t, payload, out)
				return
			}
			requireChunkError(t, err, tc.code)
			require.LessOrEqual(t, len(out), len(payload))
		})
	}
}

// flipHex changes the i-th hex digit of s.
func flipHex(s string, i int) string {
	b := []byte(s)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

// TestChunkedTamper tampers with each chunk at its start, middle and end,
// with each chunk signature, and reorders chunks.
func TestChunkedTamper(t *testing.T) {
	payload := randomPayload(3*65536+1000, 4)
	modes := []struct {
		name string
		o    wireOpts
		code string // error for tampered data
	}{
		{"signed", wireOpts{Signed: true}, "SignatureDoesNotMatch"},
		{"signed crc32c", wireOpts{Signed: true, Trailer: "x-amz-checksum-crc32c"}, "SignatureDoesNotMatch"},
		{"token crc64nvme", wireOpts{Signed: true, token: true, Trailer: "x-amz-checksum-crc64nvme"}, "BadDigest"},
	}
	for _, c := range allChecksums {
		modes = append(modes, struct {
			name string
			o    wireOpts
			code string
		}{"unsigned " + c, wireOpts{Trailer: c}, "BadDigest"})
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			w := encodeWire(t, payload, m.o)
			for i, d := range w.data {
				for _, at := range []int{d[0], (d[0] + d[1]) / 2, d[1] - 1} {
					body := bytes.Clone(w.body)
					body[at] ^= 0x20
					out, err := decode(t, body, w.opts, 32<<10)
					requireChunkError(t, err, m.code)
					if m.code == "SignatureDoesNotMatch" {
						// Nothing of the next chunk is released.
						require.LessOrEqual(t, len(out), d[1]-d[0]+i*65536, "chunk %d", i)
					}
				}
			}
			if !m.o.Signed || m.o.token {
				return
			}
			for _, sig := range w.sigs {
				body := bytes.Replace(w.body, []byte(sig), []byte(flipHex(sig, 63)), 1)
				_, err := decode(t, body, w.opts, 32<<10)
				requireChunkError(t, err, "SignatureDoesNotMatch")
			}
			// Swap the first two (equal-sized) chunks.
			f0, f1 := w.frames[0], w.frames[1]
			swapped := slices.Concat(w.body[:f0[0]], w.body[f1[0]:f1[1]], w.body[f0[0]:f0[1]], w.body[f1[1]:])
			require.Len(t, swapped, len(w.body))
			_, err := decode(t, swapped, w.opts, 32<<10)
			requireChunkError(t, err, "SignatureDoesNotMatch")
			// Drop a chunk (and announce the shorter length).
			dropped := slices.Concat(w.body[:f1[0]], w.body[f1[1]:])
			o := w.opts
			o.DecodedLength -= 65536
			_, err = decode(t, dropped, o, 32<<10)
			requireChunkError(t, err, "SignatureDoesNotMatch")
		})
	}
}

// TestChunkedNeverEOFOnInvalid truncates valid bodies at every length and
// changes every byte: the reader returns io.EOF only with exactly the payload,
// and otherwise an *s3err.Error after at most the payload's length.
func TestChunkedNeverEOFOnInvalid(t *testing.T) {
	payload := randomPayload(150, 5)
	for _, o := range []wireOpts{
		{Signed: true},
		{Signed: true, Trailer: "x-amz-checksum-sha1"},
		{Signed: true, token: true, Trailer: "x-amz-checksum-crc32"},
		{Trailer: "x-amz-checksum-crc32c"},
		{Trailer: "x-amz-checksum-crc64nvme"},
	} {
		o.chunkSize = 64
		w := encodeWire(t, payload, o)
		check := func(body []byte, what string) error {
			out, err := decode(t, body, w.opts, 17)
			if errors.Is(err, io.EOF) {
				require.Equal(t, payload, out, what)
				return err
			}
			var e *s3err.Error
			require.ErrorAs(t, err, &e, what)
			require.LessOrEqual(t, len(out), len(payload), what)
			return err
		}
		for n := range len(w.body) {
			err := check(w.body[:n], fmt.Sprintf("%+v: truncated to %d", o, n))
			if n == len(w.body)-2 {
				require.ErrorIs(t, err, io.EOF, "only the final CRLF may be missing")
			} else {
				require.NotErrorIs(t, err, io.EOF, "%+v: truncated to %d of %d", o, n, len(w.body))
			}
		}
		for i := range w.body {
			for _, x := range []byte{0x01, 0x20, 0xff} {
				body := bytes.Clone(w.body)
				body[i] ^= x
				check(body, fmt.Sprintf("%+v: byte %d ^ %#x", o, i, x))
			}
			body := slices.Concat(w.body[:i], w.body[i+1:])
			check(body, fmt.Sprintf("%+v: byte %d removed", o, i))
			body = slices.Concat(w.body[:i], []byte{'0'}, w.body[i:])
			check(body, fmt.Sprintf("%+v: byte inserted at %d", o, i))
		}
	}
}

// TestChunkedStreams shows data is released as it arrives, before the chunk
// is complete, and the signature is checked before the next chunk.
func TestChunkedStreams(t *testing.T) {
	payload := randomPayload(2*65536, 6)
	w := encodeWire(t, payload, wireOpts{Signed: true})
	pr, pw := io.Pipe()
	r := NewReader(pr, w.opts)
	go func() {
		// Send the first chunk's header and 100 bytes, then wait.
		_, _ = pw.Write(w.body[:w.data[0][0]+100])
	}()
	buf := make([]byte, 65536)
	n, err := r.Read(buf)
	require.NoError(t, err)
	require.Equal(t, payload[:n], buf[:n])
	require.Equal(t, 100, n)
	go func() {
		_, _ = pw.Write(w.body[w.data[0][0]+100:])
		_ = pw.Close()
	}()
	out, err := drain(r, 4096)
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, payload[100:], out)
}

// TestChunkedBodyErrors keeps the cause of a failing body.
func TestChunkedBodyErrors(t *testing.T) {
	w := encodeWire(t, randomPayload(1000, 7), wireOpts{Trailer: "x-amz-checksum-crc32"})
	cause := errors.New("connection reset")
	for _, cut := range []int{2, w.data[0][0] + 10, w.finalAt + 1, w.trailerAt + 5} {
		body := io.MultiReader(bytes.NewReader(w.body[:cut]), iotest.ErrReader(cause))
		r := NewReader(body, w.opts)
		_, err := drain(r, 512)
		requireChunkError(t, err, "IncompleteBody")
		require.ErrorIs(t, err, cause)
		// An *s3err.Error of the body passes as is.
		body = io.MultiReader(bytes.NewReader(w.body[:cut]), iotest.ErrReader(s3err.New(504, "GatewayTimeout", "The upstream object store did not answer in time.")))
		_, err = drain(NewReader(body, w.opts), 512)
		requireChunkError(t, err, "GatewayTimeout")
	}
	// io.EOF keeps being returned.
	r := NewReader(bytes.NewReader(w.body), w.opts)
	_, err := drain(r, 512)
	require.ErrorIs(t, err, io.EOF)
	for range 3 {
		n, err := r.Read(make([]byte, 10))
		require.Zero(t, n)
		require.Equal(t, io.EOF, err)
	}
	n, err := NewReader(bytes.NewReader(w.body), w.opts).Read(nil)
	require.Zero(t, n)
	require.NoError(t, err)
}

// TestChunkedConstantMemory shows the allocations do not grow with the
// number of chunks.
func TestChunkedConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	buf := make([]byte, 32<<10)
	allocs := func(w *wire) float64 {
		return testing.AllocsPerRun(5, func() {
			r := NewReader(bytes.NewReader(w.body), w.opts)
			for {
				if _, err := r.Read(buf); err != nil {
					if !errors.Is(err, io.EOF) {
						t.Fatal(err)
					}
					return
				}
			}
		})
	}
	for _, o := range []wireOpts{{Signed: true, Trailer: "x-amz-checksum-crc64nvme"}, {Trailer: "x-amz-checksum-sha256"}} {
		o.chunkSize = 8 << 10
		small := allocs(encodeWire(t, randomPayload(64<<10, 8), o))
		large := allocs(encodeWire(t, randomPayload(4<<20, 8), o))
		assert.Equal(t, small, large, "allocations grow with chunks (%+v)", o)
		assert.LessOrEqual(t, large, 20.0)
	}
}

// BenchmarkChunkedDecode decodes 1 MiB bodies; signed-64KiB verifies 16
// chunk signatures.
func BenchmarkChunkedDecode(b *testing.B) {
	payload := randomPayload(1<<20, 9)
	for _, bc := range []struct {
		name string
		o    wireOpts
	}{
		{"signed-64KiB", wireOpts{Signed: true}},
		{"signed-crc32-64KiB", wireOpts{Signed: true, Trailer: "x-amz-checksum-crc32"}},
		{"unsigned-crc32-1MiB", wireOpts{Trailer: "x-amz-checksum-crc32", chunkSize: 1 << 20}},
		{"unsigned-crc64nvme-64KiB", wireOpts{Trailer: "x-amz-checksum-crc64nvme"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := encodeWire(b, payload, bc.o)
			buf := make([]byte, 32<<10)
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				r := NewReader(bytes.NewReader(w.body), w.opts)
				for {
					_, err := r.Read(buf)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// fuzzPayloads are the payloads of the fuzz seeds: with signature checks on,
// a body the reader accepts decodes to one of them.
var fuzzPayloads = [][]byte{
	nil,
	[]byte("hello world"),
	[]byte("hello world, hello fuzz"),
	randomPayload(100, 10),
	randomPayload(1000, 11),
}

// fuzzOptions maps the fuzzer's mode byte to options: bits 0-2 choose the
// trailer (0 none, 1-5 a checksum, 6 an unsupported one), bit 3 signed,
// bit 4 verification, bit 5 an unknown decoded length.
func fuzzOptions(mode uint8, decodedLength int64) Options {
	o := Options{Signed: mode&8 != 0, DecodedLength: decodedLength}
	switch k := int(mode & 7); {
	case k >= 1 && k <= 5:
		o.Trailer = allChecksums[k-1]
	case k == 6:
		o.Trailer = "x-amz-checksum-md5"
	}
	if o.Signed && mode&16 != 0 {
		o.Signer = docSigner(testSeed)
	}
	if mode&32 != 0 {
		o.DecodedLength = -1
	}
	return o
}

// FuzzChunkedReader checks on any body that the reader never panics or
// stalls, never returns more than the decoded length, fails only with an
// *s3err.Error (sticky), and returns io.EOF only with the declared length, a
// checksum the body carries and, when verifying signatures, a signed payload.
func FuzzChunkedReader(f *testing.F) {
	for i, p := range fuzzPayloads {
		for k, trailer := range append([]string{""}, allChecksums...) {
			for _, signed := range []bool{false, true} {
				w := encodeWire(f, p, wireOpts{Signed: signed, Trailer: trailer, chunkSize: 7 + 30*i})
				mode := uint8(k)
				if signed {
					mode |= 8 | 16
				}
				f.Add(w.body, mode, int64(len(p)), uint16(4096))
				f.Add(w.body, mode|32|64, int64(-1), uint16(3))
			}
		}
	}
	f.Add([]byte("b;chunk-signature=abc\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\n\r\n\r\n"), uint8(1), int64(11), uint16(5))
	known := map[[32]byte]bool{}
	for _, p := range fuzzPayloads {
		known[sha256.Sum256(p)] = true
	}

	f.Fuzz(func(t *testing.T, body []byte, mode uint8, decodedLength int64, readSize uint16) {
		o := fuzzOptions(mode, decodedLength)
		var src io.Reader = bytes.NewReader(body)
		if mode&64 != 0 {
			src = iotest.OneByteReader(src)
		}
		r := NewReader(src, o)
		buf := make([]byte, int(readSize)%(70<<10)+1)
		var out []byte
		var err error
		for reads := 0; ; reads++ {
			var n int
			n, err = r.Read(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("Read returned %d", n)
			}
			out = append(out, buf[:n]...)
			if o.DecodedLength >= 0 && int64(len(out)) > o.DecodedLength {
				t.Fatalf("%d bytes returned, decoded length %d", len(out), o.DecodedLength)
			}
			if err != nil {
				break
			}
			if reads > len(body)+8 {
				t.Fatal("no progress")
			}
		}
		if n, again := r.Read(buf); n != 0 || again != err {
			t.Fatalf("error not sticky: %v then %d, %v", err, n, again)
		}
		if !errors.Is(err, io.EOF) {
			var e *s3err.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is no *s3err.Error", err)
			}
			return
		}
		if len(out) > len(body) {
			t.Fatalf("%d bytes out of a %d-byte body", len(out), len(body))
		}
		if o.DecodedLength >= 0 && int64(len(out)) != o.DecodedLength {
			t.Fatalf("io.EOF after %d bytes, decoded length %d", len(out), o.DecodedLength)
		}
		if o.Trailer != "" {
			if want := oracleChecksum(t, o.Trailer, out); !bytes.Contains(body, []byte(want)) {
				t.Fatalf("io.EOF but the body lacks the checksum %s of the output", want)
			}
		}
		if o.Signer != nil && !known[sha256.Sum256(out)] {
			t.Fatalf("signatures verified, yet the payload %q is no signed payload", out)
		}
	})
}

// TestChunkedReadsCrossChunks: a read that ends a chunk goes on into the next
// one, so that small chunks do not make small reads; a chunk's data is never
// released past a failed check.
func TestChunkedReadsCrossChunks(t *testing.T) {
	payload := randomPayload(20_000, 9)
	w := encodeWire(t, payload, wireOpts{Signed: true, chunkSize: 1000})
	r := NewReader(bytes.NewReader(w.body), w.opts)
	buf := make([]byte, 8<<10)
	n, err := r.Read(buf)
	require.NoError(t, err)
	assert.Greater(t, n, 1000, "the first read goes on past the first chunk")
	rest, err := drain(r, 8<<10)
	require.ErrorIs(t, err, io.EOF)
	assert.Equal(t, payload, append(buf[:n:n], rest...))

	// The fifth chunk's last byte flipped: nothing of it, or after it, comes out.
	body := bytes.Clone(w.body)
	body[w.data[4][1]-1] ^= 1
	out, err := decode(t, body, w.opts, 8<<10)
	requireChunkError(t, err, "SignatureDoesNotMatch")
	assert.LessOrEqual(t, len(out), 4*1000+999)
	assert.Equal(t, payload[:len(out)], out)
}

// TestChecksumAlgorithms: a trailer of each of S3's ten checksum algorithms is
// accepted; the ones the proxy computes are verified (BadDigest on a
// mismatch), the XXHASH ones are left to the upstream and go on as they came.
func TestChecksumAlgorithms(t *testing.T) {
	payload := []byte("hello world")
	names := []string{"crc32", "crc32c", "crc64nvme", "sha1", "sha256", "md5", "sha512", "xxhash64", "xxhash3", "xxhash128"}
	require.Len(t, Checksums, len(names))
	for _, name := range names {
		header := "x-amz-checksum-" + name
		a := LookupChecksum(header)
		require.NotNil(t, a, header)
		right := make([]byte, a.Size)
		if a.New != nil {
			h := a.New()
			h.Write(payload)
			right = h.Sum(nil)
		}
		wrong := append([]byte(nil), right...)
		wrong[0] ^= 0xff
		for _, c := range []struct {
			sum  []byte
			code string
		}{{right, ""}, {wrong, "BadDigest"}} {
			line := header + ":" + base64.StdEncoding.EncodeToString(c.sum)
			body := "b\r\nhello world\r\n0\r\n" + line + "\r\n\r\n"
			r := NewReader(strings.NewReader(body), Options{Trailer: header, DecodedLength: int64(len(payload))})
			out, err := io.ReadAll(r)
			if c.code == "" || a.New == nil { // computed and right, or left to the upstream
				require.NoError(t, err, line)
				assert.Equal(t, payload, out)
				assert.Equal(t, line, r.TrailerLine(), "the trailer goes upstream as it came")
				continue
			}
			var e *s3err.Error
			require.ErrorAs(t, err, &e, line)
			assert.Equal(t, c.code, e.Code, line)
		}
	}
}
