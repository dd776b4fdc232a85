package proxy

import (
	"encoding/xml"
	"errors"
	"net/http"
	"sort"
	"strconv"
)

// listBuckets answers ListBuckets (GET /) from the static buckets the client
// may use.
func (p *Proxy) listBuckets(x *exchange) error {
	r, w := x.in, x.w
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errMethodNotAllowed
	}
	token := x.who.token
	names := make([]string, 0, len(p.cfg.buckets))
	for name := range p.cfg.buckets {
		if err := p.authorize(r.Context(), token, name); err == nil {
			names = append(names, name)
		} else if !errors.Is(err, ErrAccessDenied) {
			return err
		}
	}
	sort.Strings(names)
	res := listAllMyBucketsResult{Owner: owner{ID: token, DisplayName: token}}
	created := p.started.Format("2006-01-02T15:04:05.000Z")
	for _, n := range names {
		res.Buckets = append(res.Buckets, bucketEntry{Name: n, CreationDate: created})
	}
	body, err := xml.Marshal(res)
	if err != nil {
		return errInternal.with(err)
	}
	body = append([]byte(xml.Header), body...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("X-Amz-Request-Id", x.id)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

type listAllMyBucketsResult struct {
	XMLName xml.Name      `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
	Owner   owner         `xml:"Owner"`
	Buckets []bucketEntry `xml:"Buckets>Bucket"`
}

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type bucketEntry struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
}
