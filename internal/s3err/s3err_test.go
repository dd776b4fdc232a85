package s3err

import (
	"errors"
	"strings"
	"testing"
)

// An Error's methods return copies: the shared values never change.
func TestErrorCopies(t *testing.T) {
	cause := errors.New("cause")
	e := AccessDenied.WithMessage("other").WithField("A", "1").With(cause)
	if AccessDenied.Message != "Access Denied." || AccessDenied.Fields != nil || AccessDenied.Cause != nil {
		t.Fatalf("AccessDenied changed: %+v", AccessDenied)
	}
	if e.Message != "other" || e.Cause != cause {
		t.Fatalf("copy: %+v", e)
	}
	if v, ok := e.Field("A"); !ok || v != "1" {
		t.Fatalf("field: %q %v", v, ok)
	}
	f := e.WithField("B", "2")
	if len(e.Fields) != 1 || len(f.Fields) != 2 {
		t.Fatalf("fields shared: %v %v", e.Fields, f.Fields)
	}
	if !errors.Is(e, AccessDenied) || errors.Is(e, InvalidArgument) || !errors.Is(e, cause) {
		t.Fatal("Is matches by status and code, and unwraps to the cause")
	}
	if got := e.Error(); got != "AccessDenied: other: cause" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestHelpers(t *testing.T) {
	e := InvalidArgumentOf("bad", "name", strings.Repeat("v", 100))
	if v, _ := e.Field("ArgumentValue"); !strings.HasSuffix(v, "...[100 bytes]") || len(v) > 64+20 {
		t.Fatalf("ArgumentValue not clipped: %q", v)
	}
	m := ContentSHA256Mismatch("a", "b")
	if c, _ := m.Field("ClientComputedContentSHA256"); c != "a" {
		t.Fatal(m.Fields)
	}
	if s, _ := m.Field("S3ComputedContentSHA256"); s != "b" {
		t.Fatal(m.Fields)
	}
	if Truncate("abc", 3) != "abc" || Truncate("abcd", 3) != "abc...[4 bytes]" {
		t.Fatal(Truncate("abcd", 3))
	}
}
