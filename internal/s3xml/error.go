package s3xml

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
)

// ErrorBody is S3's XML error document.
type ErrorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Resource  string  `xml:",omitempty"`
	RequestID string  `xml:"RequestId"`
	Fields    []Field `xml:",any"`
}

// Field is an extra element of an error body, such as ServerTime.
type Field struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

// NewField returns the element name with text value.
func NewField(name, value string) Field {
	return Field{XMLName: xml.Name{Local: name}, Value: value}
}

// Marshal returns the document with its XML declaration.
func (b *ErrorBody) Marshal() []byte {
	body, err := xml.Marshal(b)
	if err != nil { // cannot happen with these string fields
		body = nil
	}
	return append([]byte(xml.Header), body...)
}

// maxErrorCode bounds the error code read from an upstream's answer.
const maxErrorCode = 128

// ScrubError returns an S3 XML <Error> document without the children of
// Error that drop names, and its (first) Code, at most maxErrorCode bytes;
// ok is false for any other body (not well-formed XML, another root, a
// DOCTYPE). The document keeps its bytes, entities and spacing, but for the
// elements cut out.
func ScrubError(body []byte, drop map[string]bool) (clean []byte, code string, ok bool) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var (
		open   []string   // names of the open elements
		cuts   [][2]int64 // byte ranges of the diagnostic elements
		from   int64      // where the diagnostic being skipped starts
		skip   int        // depth inside it
		inCode bool
		root   bool // an <Error> was read
	)
	for {
		at := d.InputOffset()
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			open = append(open, t.Name.Space+":"+t.Name.Local)
			depth := len(open)
			if depth == 1 && (t.Name.Local != "Error" || t.Name.Space != "") {
				return nil, "", false
			}
			root = true
			switch {
			case skip > 0:
				skip++
			case depth == 2 && drop[t.Name.Local]:
				skip, from = 1, at
			}
			inCode = skip == 0 && depth == 2 && t.Name.Local == "Code" && code == ""
		case xml.EndElement:
			if len(open) == 0 || open[len(open)-1] != t.Name.Space+":"+t.Name.Local {
				return nil, "", false
			}
			open = open[:len(open)-1]
			inCode = false
			if skip > 0 {
				if skip--; skip == 0 {
					cuts = append(cuts, [2]int64{from, d.InputOffset()})
				}
			}
		case xml.Directive:
			return nil, "", false
		case xml.CharData:
			if inCode && len(code)+len(t) <= maxErrorCode {
				code += string(t)
			}
		}
	}
	if len(open) != 0 || !root {
		return nil, "", false // unclosed, or no element at all (text)
	}
	// The answer keeps the upstream's bytes, its entities and spacing, but
	// for the diagnostics cut out.
	clean = body
	if len(cuts) > 0 {
		clean = make([]byte, 0, len(body))
		last := int64(0)
		for _, c := range cuts {
			clean = append(clean, body[last:c[0]]...)
			last = c[1]
		}
		clean = append(clean, body[last:]...)
	}
	if !WellFormed(clean) {
		return nil, "", false
	}
	return clean, strings.TrimSpace(code), true
}

// WellFormed reports whether b parses as XML, strictly.
func WellFormed(b []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := d.Token(); err != nil {
			return err == io.EOF
		}
	}
}
