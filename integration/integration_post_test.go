package integration_test

import (
	"bytes"
	"context"
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
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
)

// POST Object (issue 14): browser form uploads, straight to versitygw and
// through the proxy, which verifies the client's policy and posts versitygw a
// form signed with its own keys.

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

func TestIntegrationPostObject(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  itgConfig
	}{
		{"http", itgConfig{}},
		{"https, path-style upstream", itgConfig{tls: true, pathStyle: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			itgPostObjectSteps(t, newItgEnv(t, c.cfg))
		})
	}
}

func itgPostObjectSteps(t *testing.T, e *itgEnv) {
	ctx := t.Context()
	e.createBuckets(t)
	small := itgRandom(3000, 1)
	big := itgRandom(9<<20+17, 2)
	lengthRange := []any{"content-length-range", 1, 10 << 20}
	post := func(f itgForm) func(s *itgSide) string {
		return func(s *itgSide) string {
			resp, body, err := itgPostSigned(ctx, s, s.buckets[0], f)
			return itgPostOutcome(s, s.buckets[0], resp, body, err)
		}
	}
	stored := func(key string, want []byte) func(s *itgSide) string {
		return func(s *itgSide) string {
			out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.buckets[0], Key: &key})
			if err != nil {
				return itgOutcome(err)
			}
			defer out.Body.Close()
			got, err := io.ReadAll(out.Body)
			if err != nil {
				return err.Error()
			}
			return fmt.Sprintf("%s type=%s meta=%s", itgBodyOutcome(got, want), *out.ContentType, itgMeta(out.Metadata))
		}
	}

	e.both(t, "post a file (204)", "204 etag=true Location <bucket>/forms%2Fa.txt", post(itgForm{
		key: "forms/a.txt", file: small, fileType: "text/plain",
		fields: [][2]string{{"Content-Type", "text/plain"}, {"x-amz-meta-color", "blue"}},
		conds:  []any{lengthRange},
	}))
	e.both(t, "the file is stored with its type and metadata", "", stored("forms/a.txt", small))

	e.both(t, "post with success_action_status 201",
		"201 etag=true Location <bucket>/forms%2Fb.bin <Location><bucket>/forms%2Fb.bin <Bucket><bucket> <Key>forms/b.bin etag=true", post(itgForm{
			key: "forms/b.bin", file: small, fields: [][2]string{{"success_action_status", "201"}}, conds: []any{lengthRange},
		}))
	e.both(t, "post with success_action_status 200", "200 etag=true Location <bucket>/forms%2Fc.bin", post(itgForm{
		key: "forms/c.bin", file: small, fields: [][2]string{{"success_action_status", "200"}},
	}))
	e.both(t, "post with success_action_redirect", "303 https://app.example/done x=1 bucket=<bucket> key=forms/d.bin etag=true", func(s *itgSide) string {
		resp, body, err := itgPostSigned(ctx, s, s.buckets[0], itgForm{key: "forms/d.bin", file: small,
			fields: [][2]string{{"success_action_redirect", "https://app.example/done?x=1"}}})
		if err != nil || resp.StatusCode != http.StatusSeeOther {
			return itgPostOutcome(s, s.buckets[0], resp, body, err)
		}
		u, err := url.Parse(resp.Header.Get("Location"))
		if err != nil {
			return err.Error()
		}
		q := u.Query()
		return fmt.Sprintf("303 %s://%s%s x=%s bucket=%s key=%s etag=%t", u.Scheme, u.Host, u.Path, q.Get("x"),
			strings.Replace(q.Get("bucket"), s.buckets[0], "<bucket>", 1), q.Get("key"), q.Get("etag") != "")
	})
	e.both(t, "post a 9 MiB file", "204 etag=true Location <bucket>/forms%2Fbig.bin", post(itgForm{
		key: "forms/big.bin", file: big, conds: []any{lengthRange},
	}))
	e.both(t, "the big file is stored", "", stored("forms/big.bin", big))
	e.both(t, "post an empty file", "204 etag=true Location <bucket>/forms%2Fempty", post(itgForm{key: "forms/empty", file: nil}))
	e.both(t, "the empty file is stored", "", stored("forms/empty", nil))

	// Refused: S3's answers, nothing stored.
	e.both(t, "file over content-length-range", "400 EntityTooLarge", post(itgForm{
		key: "forms/no1", file: small, conds: []any{[]any{"content-length-range", 1, 100}},
	}))
	e.both(t, "file under content-length-range", "400 EntityTooSmall", post(itgForm{
		key: "forms/no2", file: small, conds: []any{[]any{"content-length-range", 5000, 6000}},
	}))
	e.both(t, "expired policy", "403 AccessDenied", post(itgForm{key: "forms/no3", file: small, expires: -time.Minute}))
	e.both(t, "a 5 MiB file over content-length-range: the client reads the refusal", "400 EntityTooLarge", post(itgForm{
		key: "forms/no10", file: big[:5<<20], conds: []any{[]any{"content-length-range", 1, 1 << 20}},
	}))
	e.both(t, "an expired policy with a 5 MiB file", "403 AccessDenied", post(itgForm{key: "forms/no11", file: big[:5<<20], expires: -time.Minute}))
	e.both(t, "a field changed after signing breaks its condition", "403 AccessDenied", post(itgForm{
		key: "forms/no4", file: small, fields: [][2]string{{"Content-Type", "image/png"}},
		tamper: func(f *[][2]string) { (*f)[1][1] = "text/html" },
	}))
	e.both(t, "a field without a condition", "403 AccessDenied", post(itgForm{
		key: "forms/no5", file: small, uncovered: [][2]string{{"x-amz-meta-extra", "1"}},
	}))
	e.both(t, "a starts-with condition not met", "403 AccessDenied", post(itgForm{
		key: "forms/no6", file: small, fields: [][2]string{{"x-amz-meta-owner", "eve"}},
		conds: []any{[]string{"starts-with", "$x-amz-meta-owner", "alice"}},
	}))
	e.both(t, "wrong secret", "403 SignatureDoesNotMatch", post(itgForm{key: "forms/no7", file: small, secret: "not-the-secret"}))
	e.both(t, "no key field", "400 InvalidArgument", post(itgForm{file: small}))
	e.both(t, "no signature field", "400 InvalidArgument", post(itgForm{key: "forms/no8", file: small, drop: "X-Amz-Signature"}))
	e.both(t, "a policy that is not base64", "400 InvalidPolicyDocument", post(itgForm{
		key: "forms/no9", file: small, policy: "%%%",
	}))
	for _, key := range []string{"forms/no1", "forms/no2", "forms/no3", "forms/no4", "forms/no5", "forms/no6", "forms/no7", "forms/no8", "forms/no9", "forms/no10", "forms/no11"} {
		e.both(t, "nothing stored at "+key, "ERR 404 NotFound", func(s *itgSide) string {
			_, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.buckets[0], Key: &key})
			return itgOutcome(err)
		})
	}

	// The proxy refuses what it cannot size: a field after the file.
	resp, body, err := itgPostSigned(ctx, e.proxy, e.proxy.buckets[0], itgForm{key: "forms/after", file: small,
		after: [][2]string{{"x-ignore-note", "late"}}})
	require.NoError(t, err)
	require.Equal(t, "400 MalformedPOSTRequest", itgPostOutcome(e.proxy, e.proxy.buckets[0], resp, body, nil), "%s", body)
	after := "forms/after"
	_, err = e.proxy.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &e.proxy.buckets[0], Key: &after})
	require.Equal(t, "ERR 404 NotFound", itgOutcome(err))

	for _, key := range []string{"forms/a.txt", "forms/b.bin", "forms/c.bin", "forms/d.bin", "forms/big.bin", "forms/empty"} {
		e.both(t, "delete "+key, "ok", func(s *itgSide) string { return itgDelete(ctx, s.c, s.buckets[0], key) })
	}
	e.deleteBuckets(t)
}
