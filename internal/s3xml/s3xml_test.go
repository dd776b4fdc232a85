package s3xml

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/osproxy/proxy/internal/s3err"
)

func TestErrorBody(t *testing.T) {
	b := &ErrorBody{Code: "RequestTimeTooSkewed", Message: "a < b & \"c\"", Resource: "/b/k", RequestID: "id1",
		Fields: []Field{NewField("ServerTime", "2026-12-01T00:00:00Z"), NewField("MaxAllowedSkewMilliseconds", "900000")}}
	want := xml.Header + `<Error><Code>RequestTimeTooSkewed</Code><Message>a &lt; b &amp; &#34;c&#34;</Message><Resource>/b/k</Resource>` +
		`<RequestId>id1</RequestId><ServerTime>2026-12-01T00:00:00Z</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds></Error>`
	if got := string(b.Marshal()); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	b = &ErrorBody{Code: "NoSuchKey", Message: "m", RequestID: "id2"}
	if got := string(b.Marshal()); !strings.HasSuffix(got, "<Error><Code>NoSuchKey</Code><Message>m</Message><RequestId>id2</RequestId></Error>") {
		t.Fatalf("without a resource: %s", got)
	}
}

func TestScrubError(t *testing.T) {
	for _, tc := range []struct {
		name, in, clean, code string
		ok                    bool
	}{
		{"diagnostics cut, bytes kept",
			"<?xml version=\"1.0\"?>\n<Error>\n  <Code> SignatureDoesNotMatch </Code>\n  <AWSAccessKeyId>UPKEY</AWSAccessKeyId>\n  <StringToSign>s&amp;t</StringToSign><RequestId>1</RequestId></Error>",
			"<?xml version=\"1.0\"?>\n<Error>\n  <Code> SignatureDoesNotMatch </Code>\n  \n  <RequestId>1</RequestId></Error>", "SignatureDoesNotMatch", true},
		{"nested diagnostic", "<Error><CanonicalRequest><x>GET</x></CanonicalRequest><Code>X</Code></Error>", "<Error><Code>X</Code></Error>", "X", true},
		{"a diagnostic's name deeper is kept", "<Error><Code>X</Code><Detail><StringToSign>k</StringToSign></Detail></Error>",
			"<Error><Code>X</Code><Detail><StringToSign>k</StringToSign></Detail></Error>", "X", true},
		{"first code", "<Error><Code>A</Code><Code>B</Code></Error>", "<Error><Code>A</Code><Code>B</Code></Error>", "A", true},
		{"code past the bound", "<Error><Code>" + strings.Repeat("C", maxErrorCode+1) + "</Code></Error>", "<Error><Code>" + strings.Repeat("C", maxErrorCode+1) + "</Code></Error>", "", true},
		{"another root", "<ListBucketResult/>", "", "", false},
		{"prefixed root", `<x:Error xmlns:x="urn:x"/>`, "", "", false},
		{"not XML", "Internal Server Error", "", "", false},
		{"unclosed", "<Error><Code>X</Code>", "", "", false},
		{"DOCTYPE", `<!DOCTYPE Error [<!ENTITY e "x">]><Error><Code>&e;</Code></Error>`, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clean, code, ok := ScrubError([]byte(tc.in), diagnostics)
			if ok != tc.ok || string(clean) != tc.clean || code != tc.code {
				t.Fatalf("%v %q %q; want %v %q %q", ok, clean, code, tc.ok, tc.clean, tc.code)
			}
		})
	}
}

func TestParseDelete(t *testing.T) {
	ns := `xmlns="` + Namespace + `"`
	for _, tc := range []struct {
		name, doc string
		want      []DeleteObject // nil: MalformedXML
	}{
		{"keys and versions", `<Delete ` + ns + `><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key><VersionId>v</VersionId></Object></Delete>`,
			[]DeleteObject{{Key: "a&b"}, {Key: "c", Versioned: true}}},
		{"CDATA and blanks", "<?xml version=\"1.0\"?>\n<Delete>\n <Object><Key><![CDATA[x<y]]></Key><ETag>e</ETag></Object>\n</Delete>\n<!-- c -->", []DeleteObject{{Key: "x<y"}}},
		{"no object", `<Delete><Quiet>true</Quiet></Delete>`, nil},
		{"two keys", `<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>`, nil},
		{"object without a key", `<Delete><Object><VersionId>v</VersionId></Object></Delete>`, nil},
		{"other namespace", `<Delete><Object><x:Key xmlns:x="urn:x">s</x:Key><Key>a</Key></Object></Delete>`, nil},
		{"unknown element", `<Delete><Object><Key>a</Key><Owner>o</Owner></Object></Delete>`, nil},
		{"text beside objects", `<Delete>t<Object><Key>a</Key></Object></Delete>`, nil},
		{"two roots", `<Delete><Object><Key>a</Key></Object></Delete><Delete/>`, nil},
		{"DOCTYPE", `<!DOCTYPE d [<!ENTITY e "s">]><Delete><Object><Key>&e;</Key></Object></Delete>`, nil},
		{"another root", `<Remove><Object><Key>a</Key></Object></Remove>`, nil},
		{"past 1,000 keys", `<Delete>` + strings.Repeat(`<Object><Key>k</Key></Object>`, MaxDeleteKeys+1) + `</Delete>`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDelete([]byte(tc.doc))
			if tc.want == nil {
				if !errors.Is(err, s3err.MalformedXML) {
					t.Fatalf("%v, %v; want MalformedXML", got, err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("%v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestListAllMyBucketsResult(t *testing.T) {
	b, err := xml.Marshal(ListAllMyBucketsResult{Owner: Owner{ID: "o", DisplayName: "o"}, ContinuationToken: "t",
		Buckets: []Bucket{{Name: "a", CreationDate: "2026-12-01T00:00:00.000Z", BucketRegion: "eu-de"}, {Name: "b", CreationDate: "2026-12-01T00:00:00.000Z"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>o</ID><DisplayName>o</DisplayName></Owner>` +
		`<Buckets><Bucket><Name>a</Name><CreationDate>2026-12-01T00:00:00.000Z</CreationDate><BucketRegion>eu-de</BucketRegion></Bucket>` +
		`<Bucket><Name>b</Name><CreationDate>2026-12-01T00:00:00.000Z</CreationDate></Bucket></Buckets><ContinuationToken>t</ContinuationToken></ListAllMyBucketsResult>`
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
}

func BenchmarkErrorBody(b *testing.B) {
	e := &ErrorBody{Code: "NoSuchKey", Message: "The specified key does not exist.", Resource: "/bucket/some/key.txt", RequestID: "0123456789abcdef"}
	b.ReportAllocs()
	for b.Loop() {
		_ = e.Marshal()
	}
}

func BenchmarkScrubError(b *testing.B) {
	body := []byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><AWSAccessKeyId>UPKEY</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256
20261201T000000Z
20261201/us-east-1/s3/aws4_request
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef</StringToSign><SignatureProvided>fedcba</SignatureProvided><RequestId>1</RequestId><HostId>h</HostId></Error>`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := ScrubError(body, diagnostics); !ok {
			b.Fatal("refused")
		}
	}
}

// BenchmarkParseDelete reads a DeleteObjects document of 1,000 keys.
func BenchmarkParseDelete(b *testing.B) {
	var doc strings.Builder
	doc.WriteString(`<Delete xmlns="` + Namespace + `"><Quiet>true</Quiet>`)
	for i := range MaxDeleteKeys {
		fmt.Fprintf(&doc, "<Object><Key>logs/2026/12/01/part-%05d.json</Key></Object>", i)
	}
	doc.WriteString(`</Delete>`)
	data := []byte(doc.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseDelete(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkElementRewriter streams a CompleteMultipartUploadResult after
// 1 MiB of the whitespace S3 sends while it completes.
func BenchmarkElementRewriter(b *testing.B) {
	doc := strings.Repeat(" ", 1<<20) + `<CompleteMultipartUploadResult><Location>http://up.test:9/b/k</Location><Bucket>b</Bucket></CompleteMultipartUploadResult>`
	f := func(s string) string { return strings.Replace(s, "http://up.test:9/b", "http://proxy.test/b", 1) }
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.Copy(io.Discard, NewElementRewriter(io.NopCloser(strings.NewReader(doc)), "Location", f)); err != nil {
			b.Fatal(err)
		}
	}
}
