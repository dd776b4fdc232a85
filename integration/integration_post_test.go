package integration_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/osproxy/proxy/internal/testkit"
	"github.com/stretchr/testify/require"
)

// POST Object (issue 14): browser form uploads, straight to versitygw and
// through the proxy, which verifies the client's policy and posts versitygw a
// form signed with its own keys.

// itgForm is a POST Object form to build and sign for one side.
type itgForm = testkit.Form

// client is how s posts a form.
func (s *itgSide) client() testkit.PostClient {
	return testkit.PostClient{Name: s.name, HC: s.hc, Base: s.base, Key: s.key, Secret: s.secret}
}

// itgPostSigned builds f for bucket on side s, signs its policy with SigV4 as
// the SDKs' presigners do, and posts it.
func itgPostSigned(ctx context.Context, s *itgSide, bucket string, f itgForm) (*http.Response, []byte, error) {
	return testkit.PostSigned(ctx, s.client(), bucket, f)
}

// itgPostOutcome reduces a POST Object answer to what must not depend on the
// side (testkit.PostOutcome).
func itgPostOutcome(s *itgSide, bucket string, resp *http.Response, body []byte, err error) string {
	return testkit.PostOutcome(s.client(), bucket, resp, body, err)
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
		Key: "forms/a.txt", File: small, FileType: "text/plain",
		Fields: [][2]string{{"Content-Type", "text/plain"}, {"x-amz-meta-color", "blue"}},
		Conds:  []any{lengthRange},
	}))
	e.both(t, "the file is stored with its type and metadata", "", stored("forms/a.txt", small))

	e.both(t, "post with success_action_status 201",
		"201 etag=true Location <bucket>/forms%2Fb.bin <Location><bucket>/forms%2Fb.bin <Bucket><bucket> <Key>forms/b.bin etag=true", post(itgForm{
			Key: "forms/b.bin", File: small, Fields: [][2]string{{"success_action_status", "201"}}, Conds: []any{lengthRange},
		}))
	e.both(t, "post with success_action_status 200", "200 etag=true Location <bucket>/forms%2Fc.bin", post(itgForm{
		Key: "forms/c.bin", File: small, Fields: [][2]string{{"success_action_status", "200"}},
	}))
	e.both(t, "post with success_action_redirect", "303 https://app.example/done x=1 bucket=<bucket> key=forms/d.bin etag=true", func(s *itgSide) string {
		resp, body, err := itgPostSigned(ctx, s, s.buckets[0], itgForm{Key: "forms/d.bin", File: small,
			Fields: [][2]string{{"success_action_redirect", "https://app.example/done?x=1"}}})
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
		Key: "forms/big.bin", File: big, Conds: []any{lengthRange},
	}))
	e.both(t, "the big file is stored", "", stored("forms/big.bin", big))
	e.both(t, "post an empty file", "204 etag=true Location <bucket>/forms%2Fempty", post(itgForm{Key: "forms/empty", File: nil}))
	e.both(t, "the empty file is stored", "", stored("forms/empty", nil))

	// Refused: S3's answers, nothing stored.
	e.both(t, "file over content-length-range", "400 EntityTooLarge", post(itgForm{
		Key: "forms/no1", File: small, Conds: []any{[]any{"content-length-range", 1, 100}},
	}))
	e.both(t, "file under content-length-range", "400 EntityTooSmall", post(itgForm{
		Key: "forms/no2", File: small, Conds: []any{[]any{"content-length-range", 5000, 6000}},
	}))
	e.both(t, "expired policy", "403 AccessDenied", post(itgForm{Key: "forms/no3", File: small, Expires: -time.Minute}))
	e.both(t, "a 5 MiB file over content-length-range: the client reads the refusal", "400 EntityTooLarge", post(itgForm{
		Key: "forms/no10", File: big[:5<<20], Conds: []any{[]any{"content-length-range", 1, 1 << 20}},
	}))
	e.both(t, "an expired policy with a 5 MiB file", "403 AccessDenied", post(itgForm{Key: "forms/no11", File: big[:5<<20], Expires: -time.Minute}))
	e.both(t, "a field changed after signing breaks its condition", "403 AccessDenied", post(itgForm{
		Key: "forms/no4", File: small, Fields: [][2]string{{"Content-Type", "image/png"}},
		Tamper: func(f *[][2]string) { (*f)[1][1] = "text/html" },
	}))
	e.both(t, "a field without a condition", "403 AccessDenied", post(itgForm{
		Key: "forms/no5", File: small, Uncovered: [][2]string{{"x-amz-meta-extra", "1"}},
	}))
	e.both(t, "a starts-with condition not met", "403 AccessDenied", post(itgForm{
		Key: "forms/no6", File: small, Fields: [][2]string{{"x-amz-meta-owner", "eve"}},
		Conds: []any{[]string{"starts-with", "$x-amz-meta-owner", "alice"}},
	}))
	e.both(t, "wrong secret", "403 SignatureDoesNotMatch", post(itgForm{Key: "forms/no7", File: small, Secret: "not-the-secret"}))
	e.both(t, "no key field", "400 InvalidArgument", post(itgForm{File: small}))
	e.both(t, "no signature field", "400 InvalidArgument", post(itgForm{Key: "forms/no8", File: small, Drop: "X-Amz-Signature"}))
	e.both(t, "a policy that is not base64", "400 InvalidPolicyDocument", post(itgForm{
		Key: "forms/no9", File: small, Policy: "%%%",
	}))
	for _, key := range []string{"forms/no1", "forms/no2", "forms/no3", "forms/no4", "forms/no5", "forms/no6", "forms/no7", "forms/no8", "forms/no9", "forms/no10", "forms/no11"} {
		e.both(t, "nothing stored at "+key, "ERR 404 NotFound", func(s *itgSide) string {
			_, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.buckets[0], Key: &key})
			return itgOutcome(err)
		})
	}

	// The proxy refuses what it cannot size: a field after the file.
	resp, body, err := itgPostSigned(ctx, e.proxy, e.proxy.buckets[0], itgForm{Key: "forms/after", File: small,
		After: [][2]string{{"x-ignore-note", "late"}}})
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
