// Package sigv2 reads and checks AWS Signature Version 2, the legacy scheme
// of aws-cli v1's `s3 presign`, s3cmd (signurl, and every request with
// signature_v2), boto2 and old Hadoop connectors: the Authorization header
// "AWS <key>:<signature>" and presigned URLs (AWSAccessKeyId, Expires,
// Signature), the clock rules, and the HMAC-SHA1 of S3's string to sign in
// each of the ways real clients write it, compared in constant time. It knows
// nothing of proxies: the caller passes the secret, the time and the skew.
package sigv2

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/osproxy/proxy/internal/s3err"
	"github.com/osproxy/proxy/internal/sigv4"
)

// Signature is a parsed SigV2 signature: "Authorization: AWS <key>:<signature>",
// or the AWSAccessKeyId, Expires and Signature query parameters.
type Signature struct {
	AccessKeyID string
	Signature   string // base64 HMAC-SHA1
	Presigned   bool
	Expires     string // the Expires parameter, Unix seconds (presigned)
}

// MaxExpires bounds how far in the future a SigV2 presigned URL may
// expire, as X-Amz-Expires bounds SigV4's.
const MaxExpires = 7 * 24 * time.Hour

// ParseHeader parses "AWS <key>:<signature>".
func ParseHeader(auth string) (*Signature, error) {
	id, signature, ok := strings.Cut(strings.TrimPrefix(auth, "AWS "), ":")
	if !ok || !sigv4.ValidScopePart(id, sigv4.MaxAccessKeyID, sigv4.IsKeyIDByte) || signature == "" {
		return nil, sigv4.HeaderForm.Malformed("the authorization header is not of the form AWS <access key id>:<signature>.")
	}
	return &Signature{AccessKeyID: id, Signature: signature}, nil
}

// ParseQuery parses the SigV2 query parameters of a presigned URL.
func ParseQuery(q url.Values) (*Signature, error) {
	if len(q["AWSAccessKeyId"]) != 1 || len(q["Signature"]) != 1 || len(q["Expires"]) != 1 {
		return nil, s3err.AccessDenied.WithMessage("Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
	}
	s := &Signature{AccessKeyID: q.Get("AWSAccessKeyId"), Signature: q.Get("Signature"), Expires: q.Get("Expires"), Presigned: true}
	if !sigv4.ValidScopePart(s.AccessKeyID, sigv4.MaxAccessKeyID, sigv4.IsKeyIDByte) {
		return nil, s3err.AccessDenied.WithMessage("Query-string authentication requires a valid AWSAccessKeyId parameter")
	}
	return s, nil
}

// Verify checks a SigV2 signature with secret at now: the time rules (skew
// for a signed request, expiry for a presigned URL), then the HMAC-SHA1 of
// S3's SigV2 string to sign, compared in constant time. vhostBucket is the
// bucket the Host names, "" for a path-style request.
func Verify(r *http.Request, sig *Signature, secret, vhostBucket string, now time.Time, maxSkew time.Duration) error {
	date := ""
	if sig.Presigned {
		exp, err := strconv.ParseInt(sig.Expires, 10, 64)
		if err != nil {
			return s3err.AccessDenied.WithMessage("Invalid date (should be seconds since epoch): " + s3err.Clip(sig.Expires))
		}
		at := time.Unix(exp, 0)
		if now.After(at) {
			return sigv4.Expired("", at, now)
		}
		if at.Sub(now) > MaxExpires+maxSkew {
			return s3err.AccessDenied.WithMessage("Expires must be at most seven days from now.")
		}
		date = sig.Expires
	} else {
		when := r.Header.Get("X-Amz-Date")
		if when == "" {
			when = r.Header.Get("Date")
			date = when
		}
		t, err := parseDate(when)
		if err != nil {
			return sigv4.ErrNoDate
		}
		if err := sigv4.CheckSkew(t, when, now, maxSkew); err != nil {
			return err
		}
	}
	got := []byte(sig.Signature)
	if sig.Presigned { // a '+' left unencoded in the URL decodes to ' '
		got = bytes.ReplaceAll(got, []byte(" "), []byte("+"))
	}
	m := hmac.New(sha1.New, []byte(secret))
	want := make([]byte, 0, 28)
	for _, v := range variants {
		sts, ok := stringToSign(r, date, vhostBucket, v)
		if !ok {
			continue
		}
		m.Reset()
		m.Write(sts)
		want = base64.StdEncoding.AppendEncode(want[:0], m.Sum(nil))
		if subtle.ConstantTimeCompare(want, got) == 1 {
			return nil
		}
	}
	return s3err.SignatureDoesNotMatch
}

// parseDate parses a SigV2 request's Date or x-amz-date: HTTP dates in
// their forms, with a numeric zone too (as the S3 documentation writes them),
// or ISO 8601 basic.
func parseDate(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{http.TimeFormat, time.RFC1123Z, time.RFC1123, time.RFC850, time.ANSIC, sigv4.AmzDateFormat} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

// stringToSign is S3's SigV2 string to sign:
//
//	<method>\n<Content-MD5>\n<Content-Type>\n<date>\n<x-amz-* headers><resource>
//
// date is the Date header, "" when x-amz-date is given, or Expires when
// presigned; each x-amz-* header is "name:values\n", names lower-cased and
// sorted, values trimmed and joined by commas; the resource is the raw path as
// sent ("/<bucket>" before it when the Host names the bucket) and the
// sub-resources of the query, sorted. Clients differ where S3's rules leave
// room: see variant; ok is false when a variant does not apply to r.
func stringToSign(r *http.Request, date, vhostBucket string, v variant) (sts []byte, ok bool) {
	b := make([]byte, 0, 256)
	b = append(b, r.Method...)
	b = append(b, '\n')
	b = sigv4.AppendValues(b, r.Header.Values("Content-Md5"), false)
	b = append(b, '\n')
	b = sigv4.AppendValues(b, r.Header.Values("Content-Type"), false)
	b = append(b, '\n')
	b = append(b, date...)
	b = append(b, '\n')
	var names []string
	for name := range r.Header {
		if strings.HasPrefix(name, "X-Amz-") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		b = append(b, strings.ToLower(name)...)
		b = append(b, ':')
		b = sigv4.AppendValues(b, r.Header[name], false)
		b = append(b, '\n')
	}
	rawPath, rawQuery := sigv4.RawTarget(r)
	if vhostBucket != "" {
		b = append(b, '/')
		b = append(b, vhostBucket...)
	}
	if rawPath == "" {
		rawPath = "/"
	}
	b = append(b, rawPath...)
	if v.bucketSlash {
		if vhostBucket != "" || strings.Count(rawPath, "/") != 1 || len(rawPath) < 2 {
			return nil, false
		}
		b = append(b, '/')
	}
	if v.listType && !strings.Contains("&"+rawQuery, "&list-type=") {
		return nil, false
	}
	return appendSubresources(b, rawQuery, v.listType), true
}

// variant is one way clients write a SigV2 string to sign where they
// differ: a path-style path of a bucket alone, "/<bucket>", signed as
// "/<bucket>/" (botocore since 2023), and ListObjectsV2's list-type=2 signed
// as a sub-resource (botocore before, from its request URI
// "/{Bucket}?list-type=2").
type variant struct{ bucketSlash, listType bool }

var variants = [...]variant{{}, {bucketSlash: true}, {listType: true}, {bucketSlash: true, listType: true}}

// subresources are the query parameters a SigV2 signature covers, as
// botocore and s3cmd sign them.
var subresources = []string{
	"accelerate", "acl", "analytics", "cors", "delete", "encryption", "intelligent-tiering", "inventory", "legal-hold",
	"lifecycle", "location", "logging", "metrics", "notification", "object-lock", "ownershipControls", "partNumber",
	"policy", "publicAccessBlock", "replication", "requestPayment", "response-cache-control",
	"response-content-disposition", "response-content-encoding", "response-content-language", "response-content-type",
	"response-expires", "restore", "retention", "select", "select-type", "tagging", "torrent", "uploadId", "uploads",
	"versionId", "versioning", "versions", "website",
}

// appendSubresources appends "?name[=value]&…" for the sub-resources of a raw
// query (and list-type when listType), sorted by name, names and values
// decoded: "%61cl" is the acl sub-resource the upstream gets, so the signature
// must cover it.
func appendSubresources(b []byte, rawQuery string, listType bool) []byte {
	type kv struct{ k, v string }
	var subs []kv
	for part := range strings.SplitSeq(rawQuery, "&") {
		name, value, hasValue := strings.Cut(part, "=")
		if dec, err := url.QueryUnescape(name); err == nil {
			name = dec
		}
		if !slices.Contains(subresources, name) && !(listType && name == "list-type") {
			continue
		}
		if dec, err := url.QueryUnescape(value); err == nil {
			value = dec
		}
		if !hasValue {
			value = "\x00" // no '=' in the string to sign
		}
		subs = append(subs, kv{name, value})
	}
	slices.SortStableFunc(subs, func(x, y kv) int { return strings.Compare(x.k, y.k) })
	for i, s := range subs {
		if i == 0 {
			b = append(b, '?')
		} else {
			b = append(b, '&')
		}
		b = append(b, s.k...)
		if s.v != "\x00" {
			b = append(b, '=')
			b = append(b, s.v...)
		}
	}
	return b
}
