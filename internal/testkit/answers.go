package testkit

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// S3Answer is what a test expects of an answer, or AWS S3's own.
type S3Answer struct {
	Status  int
	Code    string
	Message string
	Fields  []string // name=value of the fields at stake
}

func (a S3Answer) String() string {
	s := fmt.Sprintf("%d %s %q", a.Status, a.Code, a.Message)
	for _, f := range a.Fields {
		s += " " + f
	}
	return s
}

// UnsignedHeaders are x-amz-* headers a client may add to a presigned PUT
// that did not sign them: each would change what is stored, or what is done.
func UnsignedHeaders(copySource string) []http.Header {
	return []http.Header{
		{"X-Amz-Acl": {"public-read"}},
		{"X-Amz-Tagging": {"secret=no"}},
		{"X-Amz-Copy-Source": {copySource}},
		{"X-Amz-Meta-Note": {"unsigned"}},
		{"X-Amz-Storage-Class": {"REDUCED_REDUNDANCY"}},
		{"X-Amz-Acl": {"public-read"}, "X-Amz-Tagging": {"secret=no"}},
	}
}

// NotSigned is AWS S3's answer to a request with unsigned x-amz-* headers
// (names as HeaderNames lists them).
func NotSigned(names string) string {
	return S3Answer{403, "AccessDenied", "There were headers present in the request which were not signed", []string{"HeadersNotSigned=" + names}}.String()
}

// HeaderNames is the lowercase names of h, sorted, as HeadersNotSigned lists
// them.
func HeaderNames(h http.Header) string {
	var names []string
	for k := range h {
		names = append(names, strings.ToLower(k))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
