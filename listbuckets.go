package proxy

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/osproxy/proxy/internal/s3xml"
)

// maxListBuckets is S3's bound of max-buckets, and the most buckets one
// ListBuckets answer holds.
const maxListBuckets = 10_000

// listBuckets answers ListBuckets (GET /): the static buckets and those of the
// WithBucketList hook that the client may use, filtered by prefix and
// bucket-region, in pages of max-buckets after continuation-token, as S3 does.
func (p *Proxy) listBuckets(x *exchange) error {
	r, w := x.in, x.w
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errMethodNotAllowed
	}
	if x.who.anonymous {
		return errAnonymous
	}
	if err := p.authorizeRequest(x); err != nil { // s3:ListAllMyBuckets
		return err
	}
	q, err := parseListBuckets(r)
	if err != nil {
		return err
	}
	all, err := p.listableBuckets(r.Context(), x.who.token)
	if err != nil {
		return err
	}
	res := s3xml.ListAllMyBucketsResult{Owner: s3xml.Owner{ID: x.who.token, DisplayName: x.who.token}, Prefix: q.prefix}
	created := p.started.Format("2006-01-02T15:04:05.000Z")
	for _, b := range all {
		if b.Name <= q.after || !strings.HasPrefix(b.Name, q.prefix) || q.region != "" && b.Region != q.region {
			continue
		}
		if err := p.authorizeToken(r.Context(), x.who.token, b.Name); err != nil {
			if errors.Is(err, ErrAccessDenied) {
				continue
			}
			return err
		}
		if len(res.Buckets) == q.max {
			res.ContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(res.Buckets[len(res.Buckets)-1].Name))
			break
		}
		e := s3xml.Bucket{Name: b.Name, CreationDate: created, BucketRegion: b.Region}
		if !b.CreationDate.IsZero() {
			e.CreationDate = b.CreationDate.UTC().Format("2006-01-02T15:04:05.000Z")
		}
		res.Buckets = append(res.Buckets, e)
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

// listBucketsQuery is what ListBuckets asks for.
type listBucketsQuery struct {
	prefix, region, after string
	max                   int
}

// parseListBuckets reads ListBuckets' parameters; bad ones are S3's 400
// InvalidArgument.
func parseListBuckets(r *http.Request) (listBucketsQuery, error) {
	v := r.URL.Query()
	q := listBucketsQuery{prefix: v.Get("prefix"), region: v.Get("bucket-region"), max: maxListBuckets}
	if s, ok := v["max-buckets"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > maxListBuckets {
			return q, errInvalidArgument.withMessage("Argument max-buckets must be an integer between 1 and 10000.").
				withField("ArgumentName", "max-buckets").withField("ArgumentValue", clip(s[0]))
		}
		q.max = n
	}
	if tok := v.Get("continuation-token"); tok != "" {
		after, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || !validBucketName(string(after)) {
			return q, errInvalidArgument.withMessage("The continuation token provided is incorrect").
				withField("ArgumentName", "continuation-token")
		}
		q.after = string(after)
	}
	return q, nil
}

// listableBuckets returns the static buckets and the hook's, by name, each
// once (a static bucket wins over a listed one of the same name).
func (p *Proxy) listableBuckets(ctx context.Context, token string) ([]ListedBucket, error) {
	all := make([]ListedBucket, 0, len(p.cfg.buckets))
	for name, b := range p.cfg.buckets {
		all = append(all, ListedBucket{Name: name, Region: b.Endpoint.Region})
	}
	if p.cfg.bucketList != nil {
		listed, err := callGated(ctx, p.listGate, p.cfg.hookTimeout, "bucket list", func(ctx context.Context) ([]ListedBucket, error) {
			return p.cfg.bucketList(ctx, token)
		})
		if err != nil {
			return nil, err
		}
		for _, b := range listed {
			if _, static := p.cfg.buckets[b.Name]; !static && validBucketName(b.Name) {
				all = append(all, b)
			}
		}
	}
	slices.SortFunc(all, func(a, b ListedBucket) int { return strings.Compare(a.Name, b.Name) })
	return slices.CompactFunc(all, func(a, b ListedBucket) bool { return a.Name == b.Name }), nil
}
