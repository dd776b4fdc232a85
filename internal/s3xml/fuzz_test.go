package s3xml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/osproxy/proxy/internal/s3err"
)

// diagnostics are the elements a proxy cuts from an upstream's error body.
var diagnostics = map[string]bool{
	"AWSAccessKeyId": true, "StringToSign": true, "StringToSignBytes": true,
	"SignatureProvided": true, "CanonicalRequest": true, "CanonicalRequestBytes": true,
}

// FuzzScrubError: scrubbing an error body never panics, and what it returns
// is an XML <Error> without the elements dropped, whose code is the one
// encoding/xml reads.
func FuzzScrubError(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>k</AWSAccessKeyId><StringToSign>s</StringToSign><RequestId>1</RequestId></Error>`))
	f.Add([]byte(`<Error><CanonicalRequest><x>nested</x></CanonicalRequest></Error>`))
	f.Add([]byte(`<Other/>`))
	f.Add([]byte(`not xml`))
	f.Fuzz(func(t *testing.T, body []byte) {
		clean, code, ok := ScrubError(body, diagnostics)
		if !ok {
			return
		}
		var e struct {
			Code string
		}
		if bytes.Count(clean, []byte("<Code")) == 1 && xml.Unmarshal(clean, &e) == nil && len(e.Code) <= maxErrorCode &&
			strings.TrimSpace(e.Code) != code {
			t.Fatalf("code %q, encoding/xml reads %q in %q", code, e.Code, clean)
		}
		d := xml.NewDecoder(bytes.NewReader(clean))
		depth := 0
		for {
			tok, err := d.Token()
			if err != nil {
				if err != io.EOF {
					t.Fatalf("scrubbed body %q does not parse: %v", clean, err)
				}
				break
			}
			switch e := tok.(type) {
			case xml.StartElement:
				depth++
				if depth == 1 && e.Name.Local != "Error" || depth == 2 && diagnostics[e.Name.Local] {
					t.Fatalf("scrubbed body %q keeps %s", clean, e.Name.Local)
				}
			case xml.EndElement:
				depth--
			}
		}
	})
}

// FuzzParseDelete: a DeleteObjects document ParseDelete accepts names the
// same keys, in the same order, when encoding/xml reads it the way a Go
// upstream would; whatever it refuses, it refuses as MalformedXML.
func FuzzParseDelete(f *testing.F) {
	for _, s := range []string{
		`<Delete><Object><Key>a</Key></Object><Object><Key>b</Key><VersionId>v</VersionId></Object></Delete>`,
		`<?xml version="1.0"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key>a &amp; <![CDATA[b]]></Key></Object></Delete>`,
		`<Delete><Object><Key>s</Key><Key>a</Key></Object></Delete>`,
		`<Delete><Object><x:Key xmlns:x="urn:x">s</x:Key><Key>a</Key></Object></Delete>`,
		`<Delete><Object><Key>a</Key></Object></Delete><Delete><Object><Key>s</Key></Object></Delete>`,
		`<!DOCTYPE d [<!ENTITY e "s">]><Delete><Object><Key>&e;</Key></Object></Delete>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objects, err := ParseDelete(data)
		if err != nil {
			if !errors.Is(err, s3err.MalformedXML) {
				t.Fatalf("refused with %v", err)
			}
			return
		}
		var doc struct {
			Objects []struct {
				Key string `xml:"Key"`
			} `xml:"Object"`
		}
		if err := xml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("accepted, but encoding/xml refuses it: %v", err)
		}
		if len(doc.Objects) != len(objects) {
			t.Fatalf("accepted %d objects, encoding/xml reads %d", len(objects), len(doc.Objects))
		}
		for i, o := range objects {
			if doc.Objects[i].Key != o.Key {
				t.Fatalf("object %d: key %q, encoding/xml reads %q", i, o.Key, doc.Objects[i].Key)
			}
		}
	})
}

// FuzzElementRewriter: the streaming rewriter never panics, reads in any
// sizes give the same output, and a body without the element passes as it is.
func FuzzElementRewriter(f *testing.F) {
	f.Add("<R><Location>http://up.test:9/b/k</Location></R>")
	f.Add("<Location><Location></Location></Location>")
	f.Add("<Location>&bad;</Location>")
	f.Add("   <Loc")
	f.Fuzz(func(t *testing.T, in string) {
		whole := rewriteAll(t, in, false)
		if one := rewriteAll(t, in, true); one != whole {
			t.Fatalf("%q: whole %q, one byte at a time %q", in, whole, one)
		}
		if !strings.Contains(in, "<Location>") && whole != in {
			t.Fatalf("%q changed to %q", in, whole)
		}
		if !bytes.Contains([]byte(in), []byte("http://up.test:9/b")) && whole != in && strings.Count(in, "<Location>") == strings.Count(whole, "<Location>") {
			// Only text that unescapes and escapes back differently may change.
			if strings.ReplaceAll(whole, "&#", "") == whole && !strings.Contains(in, "&") && !strings.ContainsAny(in, "\"'\t\r\n>") {
				t.Fatalf("%q changed to %q without a URL to rewrite", in, whole)
			}
		}
	})
}
