package s3xml

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"

	"github.com/osproxy/proxy/internal/s3err"
)

// MaxDeleteKeys is S3's bound of the keys of one DeleteObjects.
const MaxDeleteKeys = 1000

// DeleteObject is an object a DeleteObjects document names.
type DeleteObject struct {
	Key       string
	Versioned bool // with a VersionId
}

// ParseDelete reads a DeleteObjects document strictly, so that no upstream
// can read another key from it than the proxy authorized: one Delete root
// (nothing but comments and blanks after it), Quiet and Object elements in
// it, each Object with one Key and at most one of VersionId, ETag,
// LastModifiedTime and Size; elements in S3's namespace or none; no DOCTYPE
// (entities) and no other elements. Anything else is S3's 400 MalformedXML.
func ParseDelete(data []byte) ([]DeleteObject, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var (
		objects []DeleteObject
		path    []string        // the open elements
		seen    map[string]bool // the children of the open Object
		text    strings.Builder // the open Key's or VersionId's text
		roots   int
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, s3err.MalformedXML
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space != "" && t.Name.Space != Namespace {
				return nil, s3err.MalformedXML
			}
			name := t.Name.Local
			switch len(path) {
			case 0:
				if roots++; roots > 1 || name != "Delete" {
					return nil, s3err.MalformedXML
				}
			case 1:
				switch name {
				case "Object":
					if len(objects) == MaxDeleteKeys {
						return nil, s3err.MalformedXML.WithMessage("A DeleteObjects request may name at most 1000 keys.")
					}
					seen = map[string]bool{}
				case "Quiet":
				default:
					return nil, s3err.MalformedXML
				}
			case 2:
				if path[1] != "Object" || seen[name] {
					return nil, s3err.MalformedXML
				}
				switch name {
				case "Key", "VersionId", "ETag", "LastModifiedTime", "Size":
					seen[name] = true
				default:
					return nil, s3err.MalformedXML
				}
				text.Reset()
			default:
				return nil, s3err.MalformedXML
			}
			path = append(path, name)
		case xml.EndElement:
			name := path[len(path)-1]
			switch {
			case len(path) == 2 && name == "Object":
				if !seen["Key"] {
					return nil, s3err.MalformedXML
				}
				objects[len(objects)-1].Versioned = seen["VersionId"]
			case len(path) == 3 && name == "Key":
				objects = append(objects, DeleteObject{Key: text.String()})
			}
			path = path[:len(path)-1]
		case xml.CharData:
			if len(path) == 3 {
				text.Write(t)
			} else if len(bytes.TrimSpace(t)) > 0 && !(len(path) == 2 && path[1] == "Quiet") {
				return nil, s3err.MalformedXML
			}
		case xml.Directive:
			return nil, s3err.MalformedXML
		}
	}
	if roots != 1 || len(path) != 0 || len(objects) == 0 {
		return nil, s3err.MalformedXML
	}
	return objects, nil
}
