package integration_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/cespare/xxhash/v2"
	"github.com/minio/crc64nvme"
	"github.com/stretchr/testify/require"
	"github.com/zeebo/xxh3"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

// S3 fidelity (issue 13): the same request, straight to versitygw and through
// the proxy in front of it, gets the same answer in the field at stake.

// TestIntegrationLocation: the Location of CompleteMultipartUpload (XML) and
// of CreateBucket (header) name the endpoint the client used, never the
// upstream, however the proxy is mounted and addresses its upstream.
func TestIntegrationLocation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  itgConfig
	}{
		{"virtual-hosted upstream", itgConfig{}},
		{"path-style upstream", itgConfig{pathStyle: true}},
		{"under http.StripPrefix", itgConfig{mount: itgMountStripPrefix}},
		{"under WithPathPrefix", itgConfig{mount: itgMountPathPrefix, pathStyle: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newItgEnv(t, c.cfg)
			ctx := t.Context()
			e.both(t, "create bucket: Location header", "ok Location /<bucket>", func(s *itgSide) string {
				return itgCreateBucketLocation(ctx, s, s.buckets[0])
			})
			e.both(t, "complete multipart upload: Location", "ok Location <endpoint>/<bucket>/dir%2Floc.txt", func(s *itgSide) string {
				return itgCompleteLocation(ctx, s, s.buckets[0], "dir/loc.txt")
			})
			e.both(t, "delete the object", "ok", func(s *itgSide) string { return itgDelete(ctx, s.c, s.buckets[0], "dir/loc.txt") })
			e.deleteBuckets(t)
		})
	}
}

// itgCreateBucketLocation creates bucket with a raw signed request (the SDK
// does not show the Location header) and reduces its Location to a form
// without the side's endpoint and bucket name.
func itgCreateBucketLocation(ctx context.Context, s *itgSide, bucket string) string {
	r, err := http.NewRequestWithContext(ctx, http.MethodPut, s.base+"/"+bucket, nil)
	if err != nil {
		return err.Error()
	}
	if err := itgSign(ctx, s, r, emptyPayloadHash); err != nil {
		return err.Error()
	}
	resp, err := s.hc.Do(r)
	if err != nil {
		return err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	return "ok Location " + itgSideRelative(s, bucket, resp.Header.Get("Location"))
}

// itgSideRelative writes the side's endpoint and bucket in loc as <endpoint>
// and <bucket>.
func itgSideRelative(s *itgSide, bucket, loc string) string {
	if strings.HasPrefix(loc, "/") { // a path: the endpoint's path is its base
		u, _ := url.Parse(s.base)
		loc = strings.TrimPrefix(loc, u.Path)
	} else {
		loc = strings.Replace(loc, s.base, "<endpoint>", 1)
	}
	return strings.Replace(loc, bucket, "<bucket>", 1)
}

// itgCompleteLocation uploads key in one part and returns the completion's
// Location, relative to the side.
func itgCompleteLocation(ctx context.Context, s *itgSide, bucket, key string) string {
	cm, err := s.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return "create: " + itgOutcome(err)
	}
	up, err := s.c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: cm.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("one part"))})
	if err != nil {
		return "part: " + itgOutcome(err)
	}
	done, err := s.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: cm.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: up.ETag, PartNumber: aws.Int32(1)}}}})
	if err != nil {
		return "complete: " + itgOutcome(err)
	}
	return "ok Location " + itgSideRelative(s, bucket, aws.ToString(done.Location))
}

const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestItgSideRelative(t *testing.T) {
	s := &itgSide{base: "http://127.0.0.1:1/s3"}
	require.Equal(t, "<endpoint>/<bucket>/k", itgSideRelative(s, "b-1", "http://127.0.0.1:1/s3/b-1/k"))
	require.Equal(t, "/<bucket>", itgSideRelative(s, "b-1", "/s3/b-1"))
}

// TestIntegrationChecksums uploads with each of S3's ten checksum algorithms,
// as an x-amz-checksum-* header, in an unsigned trailer and in a signed one,
// with the right checksum and a wrong one: the proxy answers as versitygw
// does and versitygw stores the same checksum either way.
func TestIntegrationChecksums(t *testing.T) {
	t.Parallel()
	e := newItgEnv(t, itgConfig{})
	ctx := t.Context()
	e.createBuckets(t)
	data := itgRandom(100_000, 7)
	for _, algo := range itgChecksums {
		right := base64.StdEncoding.EncodeToString(algo.sum(data))
		wrong := base64.StdEncoding.EncodeToString(algo.sum([]byte("something else")))
		for _, form := range []string{"header", "unsigned trailer", "signed trailer"} {
			key := "sum/" + algo.name + "/" + strings.ReplaceAll(form, " ", "-")
			for _, value := range []string{right, wrong} {
				want := "200; stored x-amz-checksum-" + algo.name + "=" + right
				if value == wrong {
					want = "ERR 400 BadDigest"
				}
				e.both(t, fmt.Sprintf("%s %s, %s value", algo.name, form, map[bool]string{true: "right", false: "wrong"}[value == right]), want, func(s *itgSide) string {
					out := itgChecksumPut(ctx, s, s.buckets[0], key, algo.name, form, value, data)
					if out != "200" {
						return out
					}
					return out + "; stored " + itgRawStoredChecksums(ctx, s, s.buckets[0], key)
				})
			}
			e.both(t, "delete "+key, "ok", func(s *itgSide) string { return itgDelete(ctx, s.c, s.buckets[0], key) })
		}
	}
	e.deleteBuckets(t)
}

// itgChecksums are S3's ten checksum algorithms, computed as S3 (and
// versitygw) do: the big-endian digest, base64-encoded.
var itgChecksums = []struct {
	name string
	sum  func([]byte) []byte
}{
	{"crc32", func(b []byte) []byte { return binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b)) }},
	{"crc32c", func(b []byte) []byte {
		return binary.BigEndian.AppendUint32(nil, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	}},
	{"crc64nvme", func(b []byte) []byte { h := crc64nvme.New(); h.Write(b); return h.Sum(nil) }},
	{"sha1", func(b []byte) []byte { s := sha1.Sum(b); return s[:] }},
	{"sha256", func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }},
	{"md5", func(b []byte) []byte { s := md5.Sum(b); return s[:] }},
	{"sha512", func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }},
	{"xxhash64", func(b []byte) []byte { return binary.BigEndian.AppendUint64(nil, xxhash.Sum64(b)) }},
	{"xxhash3", func(b []byte) []byte { return binary.BigEndian.AppendUint64(nil, xxh3.Hash(b)) }},
	{"xxhash128", func(b []byte) []byte { s := xxh3.Hash128(b).Bytes(); return s[:] }},
}

// itgChecksumPut uploads data with the checksum value of algo in one form.
func itgChecksumPut(ctx context.Context, s *itgSide, bucket, key, algo, form, value string, data []byte) string {
	header := "x-amz-checksum-" + algo
	h := http.Header{}
	h.Set("X-Amz-Sdk-Checksum-Algorithm", strings.ToUpper(algo))
	if form == "header" {
		h.Set(header, value)
		return itgRawPut(ctx, s, bucket, key, itgSHA256(data), h, data, false)
	}
	h.Set("Content-Encoding", "aws-chunked")
	h.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
	h.Set("X-Amz-Trailer", header)
	if form == "unsigned trailer" {
		return itgRawPut(ctx, s, bucket, key, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", h, itgAWSChunked(data, 64<<10, header+":"+value), false)
	}
	return itgSignedTrailerPut(ctx, s, bucket, key, h, data, header+":"+value)
}

// itgSignedTrailerPut sends data as STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
// in 64 KiB chunks, each signed in a chain from the request's signature, then
// the trailer and its signature.
func itgSignedTrailerPut(ctx context.Context, s *itgSide, bucket, key string, h http.Header, data []byte, trailer string) string {
	const payload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	frame := func(sig func(chunk []byte) string, trailerSig string) []byte {
		var b bytes.Buffer
		for rest := data; ; {
			chunk := rest[:min(64<<10, len(rest))]
			rest = rest[len(chunk):]
			fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", len(chunk), sig(chunk))
			if len(chunk) == 0 {
				break
			}
			b.Write(chunk)
			b.WriteString("\r\n")
		}
		b.WriteString(trailer + "\r\nx-amz-trailer-signature:" + trailerSig + "\r\n\r\n")
		return b.Bytes()
	}
	zeros := strings.Repeat("0", 64)
	size := len(frame(func([]byte) string { return zeros }, zeros))
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.base+"/"+bucket+"/"+key, nil)
	if err != nil {
		return err.Error()
	}
	maps.Copy(req.Header, h)
	req.ContentLength = int64(size)
	now := time.Now().UTC()
	if err := itgSignAt(ctx, s, req, payload, now); err != nil {
		return "sign: " + err.Error()
	}
	_, seed, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	date := now.Format("20060102")
	scope := date + "/" + itgRegion + "/s3/aws4_request"
	signingKey := itgHMAC(itgHMAC(itgHMAC(itgHMAC([]byte("AWS4"+s.secret), date), itgRegion), "s3"), "aws4_request")
	prev := seed
	next := func(algo string, digest []byte) string {
		sts := algo + "\n" + now.Format("20060102T150405Z") + "\n" + scope + "\n" + prev + "\n"
		if algo == "AWS4-HMAC-SHA256-PAYLOAD" {
			sts += itgSHA256(nil) + "\n"
		}
		prev = hex.EncodeToString(itgHMAC(signingKey, sts+hex.EncodeToString(digest)))
		return prev
	}
	body := frame(func(chunk []byte) string {
		d := sha256.Sum256(chunk)
		return next("AWS4-HMAC-SHA256-PAYLOAD", d[:])
	}, "")
	// The trailer signature comes after the final chunk's: sign it now.
	d := sha256.Sum256([]byte(trailer + "\n"))
	body = bytes.Replace(body, []byte("x-amz-trailer-signature:\r\n"), []byte("x-amz-trailer-signature:"+next("AWS4-HMAC-SHA256-TRAILER", d[:])+"\r\n"), 1)
	req.Body = io.NopCloser(bytes.NewReader(body))
	return itgDo(s, req)
}

func itgHMAC(key []byte, data string) []byte { return testkit.HMAC(key, data) }

// itgRawStoredChecksums returns the x-amz-checksum-* headers of a HEAD with
// x-amz-checksum-mode: ENABLED, sorted.
func itgRawStoredChecksums(ctx context.Context, s *itgSide, bucket, key string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, s.base+"/"+bucket+"/"+key, nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("X-Amz-Checksum-Mode", "ENABLED")
	if err := itgSign(ctx, s, req, emptyPayloadHash); err != nil {
		return err.Error()
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err.Error()
	}
	resp.Body.Close()
	var sums []string
	for name, v := range resp.Header {
		if n := strings.ToLower(name); strings.HasPrefix(n, "x-amz-checksum-") && n != "x-amz-checksum-type" {
			sums = append(sums, n+"="+v[0])
		}
	}
	slices.Sort(sums)
	return strings.Join(sums, ",")
}

// TestIntegrationErrorCodes sends the same faulty requests straight to
// versitygw and through the proxy and compares the status, the S3 code and
// the field at stake: S3 SDKs act on the code, and some on the field (the
// Region of a wrong-region answer, the server time of a skewed one).
func TestIntegrationErrorCodes(t *testing.T) {
	t.Parallel()
	e := newItgEnv(t, itgConfig{opts: []proxy.Option{proxy.WithRegions(itgRegion)}})
	ctx := t.Context()
	e.createBuckets(t)
	now := time.Now().UTC()
	signed := func(s *itgSide, method, path, region, service string, at time.Time, mod func(*http.Request)) *http.Request {
		r, _ := http.NewRequestWithContext(ctx, method, s.base+path, nil)
		if mod != nil {
			mod(r)
		}
		r.Header.Set("X-Amz-Content-Sha256", emptyPayloadHash)
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		_ = signer.SignHTTP(ctx, aws.Credentials{AccessKeyID: s.key, SecretAccessKey: s.secret}, r, emptyPayloadHash, service, region, at)
		return r
	}
	presigned := func(s *itgSide, path, region string, at time.Time, expires string, key string) *http.Request {
		u, _ := url.Parse(s.base + path)
		q := u.Query()
		q.Set("X-Amz-Expires", "60")
		u.RawQuery = q.Encode()
		r := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}}
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		if key == "" {
			key = s.key
		}
		signedURL, _, _ := signer.PresignHTTP(ctx, aws.Credentials{AccessKeyID: key, SecretAccessKey: s.secret}, r, "UNSIGNED-PAYLOAD", "s3", region, at)
		if expires != "" {
			signedURL = strings.Replace(signedURL, "X-Amz-Expires=60", "X-Amz-Expires="+expires, 1)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, signedURL, nil)
		return req
	}
	cases := []struct {
		name  string
		field string // an XML field of the answer to compare
		req   func(s *itgSide) *http.Request
		s3    string // S3's answer, where versitygw answers otherwise: the proxy must give S3's
	}{
		{"header: wrong region", "Region", func(s *itgSide) *http.Request {
			return signed(s, http.MethodGet, "/"+s.buckets[0]+"/k", "eu-west-1", "s3", now, nil)
		}, ""},
		{"header: another service", "", func(s *itgSide) *http.Request {
			return signed(s, http.MethodGet, "/"+s.buckets[0]+"/k", itgRegion, "ec2", now, nil)
		}, ""},
		{"header: wrong terminal", "", func(s *itgSide) *http.Request {
			r := signed(s, http.MethodGet, "/"+s.buckets[0]+"/k", itgRegion, "s3", now, nil)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/aws4_request", "/aws5_request", 1))
			return r
		}, ""},
		{"header: unknown access key", "", func(s *itgSide) *http.Request {
			r := signed(s, http.MethodGet, "/"+s.buckets[0]+"/k", itgRegion, "s3", now, nil)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "Credential="+s.key, "Credential=nobody", 1))
			return r
		}, "403 InvalidAccessKeyId"},
		{"header: an hour of skew", "", func(s *itgSide) *http.Request {
			return signed(s, http.MethodGet, "/"+s.buckets[0]+"/k", itgRegion, "s3", now.Add(-time.Hour), nil)
		}, ""},
		{"presigned: wrong region", "", func(s *itgSide) *http.Request { return presigned(s, "/"+s.buckets[0]+"/k", "eu-west-1", now, "", "") }, ""},
		{"presigned: expired", "", func(s *itgSide) *http.Request {
			return presigned(s, "/"+s.buckets[0]+"/k", itgRegion, now.Add(-time.Hour), "", "")
		}, ""},
		{"presigned: X-Amz-Expires negative", "", func(s *itgSide) *http.Request { return presigned(s, "/"+s.buckets[0]+"/k", itgRegion, now, "-1", "") }, ""},
		{"presigned: X-Amz-Expires over a week", "", func(s *itgSide) *http.Request {
			return presigned(s, "/"+s.buckets[0]+"/k", itgRegion, now, "604801", "")
		}, ""},
		{"presigned: X-Amz-Expires not a number", "", func(s *itgSide) *http.Request {
			return presigned(s, "/"+s.buckets[0]+"/k", itgRegion, now, "soon", "")
		}, ""},
		{"presigned: unknown access key", "", func(s *itgSide) *http.Request {
			return presigned(s, "/"+s.buckets[0]+"/k", itgRegion, now, "", "nobody")
		}, "403 InvalidAccessKeyId"},
		{"body does not match its x-amz-content-sha256", "ClientComputedContentSHA256", func(s *itgSide) *http.Request {
			r, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.base+"/"+s.buckets[0]+"/mismatch", strings.NewReader("the body"))
			_ = itgSign(ctx, s, r, itgSHA256([]byte("another body")))
			return r
		}, ""},
		{"key over 1,024 bytes", "", func(s *itgSide) *http.Request {
			return signed(s, http.MethodGet, "/"+s.buckets[0]+"/"+strings.Repeat("k", 1025), itgRegion, "s3", now, nil)
		}, ""},
		{"Content-MD5 not base64", "", func(s *itgSide) *http.Request {
			return signed(s, http.MethodPut, "/"+s.buckets[0]+"/md5", itgRegion, "s3", now, func(r *http.Request) { r.Header.Set("Content-Md5", "not md5") })
		}, ""},
	}
	for _, c := range cases {
		if c.s3 != "" {
			d, p := itgErrorOutcome(e.direct, c.req(e.direct), c.field), itgErrorOutcome(e.proxy, c.req(e.proxy), c.field)
			if p != c.s3 {
				t.Errorf("%s: proxy %q, S3 answers %q", c.name, p, c.s3)
			}
			t.Logf("%s: versitygw answers %q where S3 answers %q", c.name, d, c.s3)
			continue
		}
		e.both(t, c.name, "", func(s *itgSide) string {
			return itgErrorOutcome(s, c.req(s), c.field)
		})
	}
	e.deleteBuckets(t)
}

// itgErrorOutcome sends req and returns its status, S3 code and field.
func itgErrorOutcome(s *itgSide, req *http.Request, field string) string {
	resp, err := s.hc.Do(req)
	if err != nil {
		return "ERR " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var fields struct {
		Code  string
		Inner []byte `xml:",innerxml"`
	}
	_ = xml.Unmarshal(body, &fields)
	out := fmt.Sprintf("%d %s", resp.StatusCode, fields.Code)
	if field != "" {
		_, v, _ := strings.Cut(string(fields.Inner), "<"+field+">")
		v, _, _ = strings.Cut(v, "</"+field+">")
		if field == "ClientComputedContentSHA256" && v != "" {
			v = "present"
		}
		out += " " + field + "=" + v
	}
	return out
}

// TestIntegrationListBuckets: with buckets routed by hooks, ListBuckets shows
// them (WithBucketList) and answers prefix, max-buckets and
// continuation-token as versitygw does.
func TestIntegrationListBuckets(t *testing.T) {
	t.Parallel()
	e := newItgEnv(t, itgConfig{buckets: 3, hooks: true})
	ctx := t.Context()
	e.createBuckets(t)
	// Each side's buckets share a prefix no other test's have.
	prefix := func(s *itgSide) string { return s.buckets[0][:strings.LastIndex(s.buckets[0], "-")-1] }
	list := func(s *itgSide, in *s3.ListBucketsInput) string {
		out, err := s.c.ListBuckets(ctx, in)
		if err != nil {
			return itgOutcome(err)
		}
		// Each bucket as its rank among the side's bucket names: the names end
		// in sequence numbers that sort differently on each side.
		sorted := slices.Sorted(slices.Values(s.buckets))
		var names []string
		for _, b := range out.Buckets {
			if i := slices.Index(sorted, aws.ToString(b.Name)); i >= 0 {
				names = append(names, strconv.Itoa(i))
			} else {
				names = append(names, "other")
			}
		}
		return fmt.Sprintf("ok %v, prefix echoed %v, token %v", names, aws.ToString(out.Prefix) == aws.ToString(in.Prefix) && in.Prefix != nil, out.ContinuationToken != nil)
	}
	e.both(t, "list by prefix", "ok [0 1 2], prefix echoed true, token false", func(s *itgSide) string {
		return list(s, &s3.ListBucketsInput{Prefix: aws.String(prefix(s))})
	})
	e.both(t, "list two by two", "ok [0 1], prefix echoed true, token true; then ok [2], prefix echoed true, token false", func(s *itgSide) string {
		in := &s3.ListBucketsInput{Prefix: aws.String(prefix(s)), MaxBuckets: aws.Int32(2)}
		first, err := s.c.ListBuckets(ctx, in)
		if err != nil {
			return itgOutcome(err)
		}
		out := list(s, in)
		in.ContinuationToken = first.ContinuationToken
		return out + "; then " + list(s, in)
	})
	for _, bad := range []int32{0, 10001} {
		e.both(t, fmt.Sprintf("max-buckets %d", bad), "ERR 400 InvalidArgument", func(s *itgSide) string {
			return list(s, &s3.ListBucketsInput{Prefix: aws.String(prefix(s)), MaxBuckets: aws.Int32(bad)})
		})
	}
	e.deleteBuckets(t)
}

// TestIntegrationAnonymous: a bucket whose policy lets anyone read is read
// through the proxy without credentials, as straight from versitygw; what the
// policy does not allow is refused by versitygw itself, since the proxy
// forwards anonymous requests without the bucket's credentials.
func TestIntegrationAnonymous(t *testing.T) {
	t.Parallel()
	e := newItgEnv(t, itgConfig{anonymous: true})
	ctx := t.Context()
	e.createBuckets(t)
	body := []byte("public bytes")
	e.both(t, "put an object", "ok", func(s *itgSide) string { return itgPut(ctx, s.c, s.buckets[0], "pub.txt", body, nil) })
	anon := func(s *itgSide, method, path string, payload []byte) string {
		r, _ := http.NewRequestWithContext(ctx, method, s.base+path, bytes.NewReader(payload))
		resp, err := s.hc.Do(r)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 {
			return fmt.Sprintf("200 %q", b)
		}
		return fmt.Sprintf("%d %s", resp.StatusCode, s3Code(string(b)))
	}
	e.both(t, "anonymous GET before the policy", "403 AccessDenied", func(s *itgSide) string {
		return anon(s, http.MethodGet, "/"+s.buckets[0]+"/pub.txt", nil)
	})
	e.both(t, "public-read policy", "ok", func(s *itgSide) string {
		policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + s.buckets[0] + `/*"}]}`
		_, err := s.c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: &s.buckets[0], Policy: &policy})
		return itgOutcome(err)
	})
	e.both(t, "anonymous GET", `200 "public bytes"`, func(s *itgSide) string { return anon(s, http.MethodGet, "/"+s.buckets[0]+"/pub.txt", nil) })
	e.both(t, "anonymous PUT, which the policy does not allow", "403 AccessDenied", func(s *itgSide) string {
		return anon(s, http.MethodPut, "/"+s.buckets[0]+"/new.txt", []byte("x"))
	})
	e.both(t, "anonymous ListBuckets", "403 AccessDenied", func(s *itgSide) string { return anon(s, http.MethodGet, "/", nil) })
	e.both(t, "delete the object", "ok", func(s *itgSide) string { return itgDelete(ctx, s.c, s.buckets[0], "pub.txt") })
	e.deleteBuckets(t)
}

// TestIntegrationCORSPreflight: with the bucket's own CORS configuration,
// a preflight through the proxy (forwarded without credentials) gets
// versitygw's own answer: allowed, refused for another origin, refused for a
// bucket without CORS.
func TestIntegrationCORSPreflight(t *testing.T) {
	t.Parallel()
	e := newItgEnv(t, itgConfig{buckets: 2})
	ctx := t.Context()
	e.createBuckets(t)
	e.both(t, "put bucket CORS", "ok", func(s *itgSide) string {
		_, err := s.c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: &s.buckets[0], CORSConfiguration: &types.CORSConfiguration{
			CORSRules: []types.CORSRule{{AllowedOrigins: []string{"https://app.example"}, AllowedMethods: []string{"GET", "PUT"},
				AllowedHeaders: []string{"content-type"}, MaxAgeSeconds: aws.Int32(600)}},
		}})
		return itgOutcome(err)
	})
	preflight := func(s *itgSide, bucket, origin, method string) string {
		r, _ := http.NewRequestWithContext(ctx, http.MethodOptions, s.base+"/"+bucket+"/k", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", method)
		r.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := s.hc.Do(r)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s allow-origin=%q allow-methods=%q", resp.StatusCode, s3Code(string(b)),
			resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Allow-Methods"))
	}
	e.both(t, "allowed preflight", `200  allow-origin="https://app.example" allow-methods="GET, PUT"`, func(s *itgSide) string {
		return preflight(s, s.buckets[0], "https://app.example", "PUT")
	})
	e.both(t, "another origin", `403 AccessForbidden allow-origin="" allow-methods=""`, func(s *itgSide) string {
		return preflight(s, s.buckets[0], "https://evil.example", "PUT")
	})
	e.both(t, "a bucket without CORS", `403 AccessForbidden allow-origin="" allow-methods=""`, func(s *itgSide) string {
		return preflight(s, s.buckets[1], "https://app.example", "GET")
	})
	e.deleteBuckets(t)
}
