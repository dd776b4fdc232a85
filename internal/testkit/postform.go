package testkit

// POST Object forms as a browser posts them and the SDKs' presigners sign
// them, for the tests of the root (against a proxy on an httptest server) and
// of the integration module (straight to an S3 server and through the proxy).

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// PostClient is one way to post a form: directly to an S3 server ("direct")
// or through the proxy ("proxy"), with the client's HTTP client, base
// endpoint and keys.
type PostClient struct {
	Name        string // "direct" or "proxy"
	HC          *http.Client
	Base        string // the client's base endpoint
	Key, Secret string // the client's access key and secret
}

// Region is the region forms are signed for.
const Region = "us-east-1"

// Form is a POST Object form to build, sign and post.
type Form struct {
	Key       string      // the key field ("" for none)
	Fields    [][2]string // more fields before the file, each with an exact condition
	Uncovered [][2]string // fields before the file without a condition
	Conds     []any       // more conditions
	Expires   time.Duration
	File      []byte
	FileName  string
	FileType  string
	After     [][2]string        // fields after the file
	Drop      string             // a signature field left out
	Tamper    func(*[][2]string) // changes the fields after signing
	Secret    string             // signs with this secret instead of the side's
	Policy    string             // signs this policy field instead of the policy of the conditions
	At        time.Time          // when it is signed; zero: now
}

// PostSigned builds f for bucket as s, signs its policy with SigV4 as the
// SDKs' presigners do, and posts it.
func PostSigned(ctx context.Context, s PostClient, bucket string, f Form) (*http.Response, []byte, error) {
	now := time.Now().UTC()
	if !f.At.IsZero() {
		now = f.At.UTC()
	}
	date := now.Format("20060102T150405Z")
	cred := s.Key + "/" + date[:8] + "/" + Region + "/s3/aws4_request"
	if f.Expires == 0 {
		f.Expires = 10 * time.Minute
	}
	conds := []any{map[string]string{"bucket": bucket}}
	if f.Key != "" {
		conds = append(conds, []string{"eq", "$key", f.Key})
	}
	for _, kv := range f.Fields {
		conds = append(conds, map[string]string{kv[0]: kv[1]})
	}
	conds = append(conds, f.Conds...)
	conds = append(conds, map[string]string{"x-amz-algorithm": "AWS4-HMAC-SHA256"},
		map[string]string{"x-amz-credential": cred}, map[string]string{"x-amz-date": date})
	doc, _ := json.Marshal(map[string]any{"expiration": now.Add(f.Expires).Format("2006-01-02T15:04:05.000Z"), "conditions": conds})
	policy := base64.StdEncoding.EncodeToString(doc)
	if f.Policy != "" {
		policy = f.Policy
	}
	secret := s.Secret
	if f.Secret != "" {
		secret = f.Secret
	}
	key := []byte("AWS4" + secret)
	for _, part := range []string{date[:8], Region, "s3", "aws4_request"} {
		key = HMAC(key, part)
	}
	signature := hex.EncodeToString(HMAC(key, policy))

	var fields [][2]string
	if f.Key != "" {
		fields = append(fields, [2]string{"key", f.Key})
	}
	fields = append(fields, f.Fields...)
	fields = append(fields, f.Uncovered...)
	fields = append(fields, [][2]string{{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"}, {"X-Amz-Credential", cred},
		{"X-Amz-Date", date}, {"Policy", policy}, {"X-Amz-Signature", signature}}...)
	if f.Drop != "" {
		for i, kv := range fields {
			if strings.EqualFold(kv[0], f.Drop) {
				fields = append(fields[:i], fields[i+1:]...)
				break
			}
		}
	}
	if f.Tamper != nil {
		f.Tamper(&fields)
	}
	return PostFields(ctx, s, bucket, fields, f)
}

// PostFields posts fields, f's file and the fields after it to the bucket.
func PostFields(ctx context.Context, s PostClient, bucket string, fields [][2]string, f Form) (*http.Response, []byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, kv := range fields {
		_ = mw.WriteField(kv[0], kv[1])
	}
	h := textproto.MIMEHeader{}
	name := f.FileName
	if name == "" {
		name = "upload.bin"
	}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
	if f.FileType != "" {
		h.Set("Content-Type", f.FileType)
	}
	w, _ := mw.CreatePart(h)
	_, _ = w.Write(f.File)
	for _, kv := range f.After {
		_ = mw.WriteField(kv[0], kv[1])
	}
	_ = mw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Base+"/"+bucket, &body)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	hc := *s.HC
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// PostOutcome reduces a POST Object answer to what must not depend on the
// side: the status and error code, or for a success the Location, whether
// there is an ETag, and the PostResponse of a 201. Through the proxy a
// Location must name the proxy; versitygw's own names versitygw (behind the
// TLS pass-through, not the endpoint the client used), so a Location is
// reduced to its path after the bucket.
func PostOutcome(s PostClient, bucket string, resp *http.Response, body []byte, err error) string {
	where := func(loc string) string {
		if s.Name == "proxy" && !strings.HasPrefix(loc, s.Base+"/"+bucket+"/") {
			return "not the proxy's: " + loc
		}
		u, err := url.Parse(loc)
		if err != nil {
			return err.Error()
		}
		return strings.Replace(u.EscapedPath(), "/"+bucket+"/", "<bucket>/", 1)
	}
	if err != nil {
		return err.Error()
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusSeeOther {
		return fmt.Sprintf("%d %s", resp.StatusCode, S3Code(string(body)))
	}
	out := fmt.Sprintf("%d etag=%t", resp.StatusCode, resp.Header.Get("ETag") != "")
	if loc := resp.Header.Get("Location"); loc != "" {
		out += " Location " + where(loc)
	}
	if resp.StatusCode == http.StatusCreated {
		var pr struct {
			Location, Bucket, Key, ETag string
		}
		if err := xml.Unmarshal(body, &pr); err != nil {
			return out + " body: " + err.Error()
		}
		out += fmt.Sprintf(" <Location>%s <Bucket>%s <Key>%s etag=%t", where(pr.Location),
			strings.Replace(pr.Bucket, bucket, "<bucket>", 1), pr.Key, pr.ETag != "")
	}
	return out
}

// HMAC is HMAC-SHA256 of data with key.
func HMAC(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// S3Code is the <Code> of an S3 error body, "" for none.
func S3Code(body string) string {
	_, rest, ok := strings.Cut(body, "<Code>")
	if !ok {
		return ""
	}
	code, _, _ := strings.Cut(rest, "</Code>")
	return code
}
