package proxy_test

// POST Object forms as a browser posts them and the SDKs' presigners sign
// them, for the in-process tests (postobject_test.go, merge_test.go, the
// red-team probes) against a proxy on an httptest server. The integration
// suite (integration/) keeps its own copy, whose sides also carry an S3 client.

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
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// itgSide is one way to reach an S3 endpoint, as the integration suite names
// it: directly ("direct") or through the proxy ("proxy"), with the client's
// base endpoint, keys and HTTP client (unitSide in postobject_test.go makes
// one for a proxy on an httptest server).
type itgSide struct {
	name   string       // "direct" or "proxy"
	hc     *http.Client // the client's HTTP client
	base   string       // the client's base endpoint
	key    string       // the client's access key and secret
	secret string
}

// itgRegion is the region forms are signed for.
const itgRegion = "us-east-1"

// itgForm is a POST Object form to build and sign for one side.
type itgForm struct {
	key       string      // the key field ("" for none)
	fields    [][2]string // more fields before the file, each with an exact condition
	uncovered [][2]string // fields before the file without a condition
	conds     []any       // more conditions
	expires   time.Duration
	file      []byte
	fileName  string
	fileType  string
	after     [][2]string        // fields after the file
	drop      string             // a signature field left out
	tamper    func(*[][2]string) // changes the fields after signing
	secret    string             // signs with this secret instead of the side's
	policy    string             // signs this policy field instead of the policy of the conditions
	at        time.Time          // when it is signed; zero: now
}

// itgPostSigned builds f for bucket on side s, signs its policy with SigV4 as
// the SDKs' presigners do, and posts it.
func itgPostSigned(ctx context.Context, s *itgSide, bucket string, f itgForm) (*http.Response, []byte, error) {
	now := time.Now().UTC()
	if !f.at.IsZero() {
		now = f.at.UTC()
	}
	date := now.Format("20060102T150405Z")
	cred := s.key + "/" + date[:8] + "/" + itgRegion + "/s3/aws4_request"
	if f.expires == 0 {
		f.expires = 10 * time.Minute
	}
	conds := []any{map[string]string{"bucket": bucket}}
	if f.key != "" {
		conds = append(conds, []string{"eq", "$key", f.key})
	}
	for _, kv := range f.fields {
		conds = append(conds, map[string]string{kv[0]: kv[1]})
	}
	conds = append(conds, f.conds...)
	conds = append(conds, map[string]string{"x-amz-algorithm": "AWS4-HMAC-SHA256"},
		map[string]string{"x-amz-credential": cred}, map[string]string{"x-amz-date": date})
	doc, _ := json.Marshal(map[string]any{"expiration": now.Add(f.expires).Format("2006-01-02T15:04:05.000Z"), "conditions": conds})
	policy := base64.StdEncoding.EncodeToString(doc)
	if f.policy != "" {
		policy = f.policy
	}
	secret := s.secret
	if f.secret != "" {
		secret = f.secret
	}
	key := []byte("AWS4" + secret)
	for _, part := range []string{date[:8], itgRegion, "s3", "aws4_request"} {
		key = itgHMAC(key, part)
	}
	signature := hex.EncodeToString(itgHMAC(key, policy))

	var fields [][2]string
	if f.key != "" {
		fields = append(fields, [2]string{"key", f.key})
	}
	fields = append(fields, f.fields...)
	fields = append(fields, f.uncovered...)
	fields = append(fields, [][2]string{{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"}, {"X-Amz-Credential", cred},
		{"X-Amz-Date", date}, {"Policy", policy}, {"X-Amz-Signature", signature}}...)
	if f.drop != "" {
		for i, kv := range fields {
			if strings.EqualFold(kv[0], f.drop) {
				fields = append(fields[:i], fields[i+1:]...)
				break
			}
		}
	}
	if f.tamper != nil {
		f.tamper(&fields)
	}
	return itgPostForm(ctx, s, bucket, fields, f)
}

// itgPostForm posts fields, the file and the fields after it to the bucket.
func itgPostForm(ctx context.Context, s *itgSide, bucket string, fields [][2]string, f itgForm) (*http.Response, []byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, kv := range fields {
		_ = mw.WriteField(kv[0], kv[1])
	}
	h := textproto.MIMEHeader{}
	name := f.fileName
	if name == "" {
		name = "upload.bin"
	}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
	if f.fileType != "" {
		h.Set("Content-Type", f.fileType)
	}
	w, _ := mw.CreatePart(h)
	_, _ = w.Write(f.file)
	for _, kv := range f.after {
		_ = mw.WriteField(kv[0], kv[1])
	}
	_ = mw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/"+bucket, &body)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	hc := *s.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// itgPostOutcome reduces a POST Object answer to what must not depend on the
// side: the status and error code, or for a success the Location, whether
// there is an ETag, and the PostResponse of a 201. Through the proxy a
// Location must name the proxy; versitygw's own names versitygw (behind the
// TLS pass-through, not the endpoint the client used), so a Location is
// reduced to its path after the bucket.
func itgPostOutcome(s *itgSide, bucket string, resp *http.Response, body []byte, err error) string {
	where := func(loc string) string {
		if s.name == "proxy" && !strings.HasPrefix(loc, s.base+"/"+bucket+"/") {
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
		return fmt.Sprintf("%d %s", resp.StatusCode, s3Code(string(body)))
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

func itgHMAC(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// itgRandom returns n reproducible pseudo-random bytes.
func itgRandom(n int, seed uint64) []byte {
	var s [32]byte
	s[0] = byte(seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}
