package otelproxy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/osproxy/proxy"
)

func TestRedactQuery(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "",
		"list-type=2&prefix=a%2Fb": "list-type=2&prefix=a%2Fb",
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=abc&x-amz-security-token=tok": "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&x-amz-security-token=REDACTED",
		"AWSAccessKeyId=AKID&Expires=1&Signature=sig%3D": "AWSAccessKeyId=REDACTED&Expires=1&Signature=REDACTED",
		"X-Amz-%53ignature=abc&uploads":                  "X-Amz-%53ignature=REDACTED&uploads",
	} {
		if got := redactQuery(in); got != want {
			t.Errorf("redactQuery(%q) = %q, want %q", in, got, want)
		}
	}
	u, _ := url.Parse("https://user:pass@b.s3.example.com/k?X-Amz-Signature=abc&versionId=1")
	if got, want := redactURL(u), "https://b.s3.example.com/k?X-Amz-Signature=REDACTED&versionId=1"; got != want {
		t.Errorf("redactURL = %q, want %q", got, want)
	}
}

func TestErrorType(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&proxy.Error{StatusCode: 503, Code: "ServiceUnavailable"}, "ServiceUnavailable"},
		{fmt.Errorf("wrapped: %w", proxy.ErrAccessDenied), "AccessDenied"},
		{fmt.Errorf("authorization hook answered after its deadline: %w", context.DeadlineExceeded), "timeout"},
		{context.Canceled, "canceled"},
		{errors.New("directory down"), "_OTHER"},
	} {
		if got := errorType(c.err); got != c.want {
			t.Errorf("errorType(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestNormalizeMethod(t *testing.T) {
	for in, want := range map[string][2]string{
		"GET": {"GET", ""}, "PUT": {"PUT", ""}, "OPTIONS": {"OPTIONS", ""}, "get": {"_OTHER", "get"}, "PROPFIND": {"_OTHER", "PROPFIND"},
	} {
		if m, o := normalizeMethod(in); m != want[0] || o != want[1] {
			t.Errorf("normalizeMethod(%q) = %q, %q, want %q", in, m, o, want)
		}
	}
}
