package integration_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// TestIntegrationPagination lists past 1,000 keys with continuation tokens
// (ListObjectsV2) and markers (ListObjects), then deletes them in batches.
func TestIntegrationPagination(t *testing.T) {
	t.Parallel()
	e := newItgEnv(t, itgConfig{})
	ctx := t.Context()
	e.createBuckets(t)

	const n = 1050
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("page/%04d", i)
	}
	e.both(t, fmt.Sprintf("put %d keys", n), "ok", func(s *itgSide) string {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(16)
		for _, k := range keys {
			g.Go(func() error {
				if o := itgPut(gctx, s.c, s.buckets[0], k, []byte(k), nil); o != "ok" {
					return fmt.Errorf("put %s: %s", k, o)
				}
				return nil
			})
		}
		return itgOutcome(g.Wait())
	})
	want := fmt.Sprintf("ok pages [1000 50] names in order %s", itgHash([]byte(strings.Join(keys, "\n"))))
	e.both(t, "ListObjectsV2 with MaxKeys 1000", want, func(s *itgSide) string {
		l := itgList(ctx, s.c, s.buckets[0], "page/", "", 1000)
		if l.err != nil {
			return itgOutcome(l.err)
		}
		return fmt.Sprintf("ok pages %v names in order %s", l.pages, itgHash([]byte(strings.Join(l.keys, "\n"))))
	})
	e.both(t, "ListObjectsV2 with default MaxKeys", want, func(s *itgSide) string {
		l := itgList(ctx, s.c, s.buckets[0], "", "", 0)
		if l.err != nil {
			return itgOutcome(l.err)
		}
		return fmt.Sprintf("ok pages %v names in order %s", l.pages, itgHash([]byte(strings.Join(l.keys, "\n"))))
	})
	e.both(t, "ListObjects (v1) with markers", want, func(s *itgSide) string {
		var pages []int
		var names []string
		in := &s3.ListObjectsInput{Bucket: &s.buckets[0], MaxKeys: aws.Int32(1000)}
		for range 10 {
			out, err := s.c.ListObjects(ctx, in)
			if err != nil {
				return itgOutcome(err)
			}
			pages = append(pages, len(out.Contents))
			for _, o := range out.Contents {
				names = append(names, aws.ToString(o.Key))
			}
			if !aws.ToBool(out.IsTruncated) || len(out.Contents) == 0 {
				break
			}
			in.Marker = out.Contents[len(out.Contents)-1].Key
		}
		return fmt.Sprintf("ok pages %v names in order %s", pages, itgHash([]byte(strings.Join(names, "\n"))))
	})
	e.both(t, "batch delete 1000 + 50 keys", `ok deleted 1000 + 50, errors 0`, func(s *itgSide) string {
		d1 := itgDeleteObjects(ctx, s.c, s.buckets[0], keys[:1000])
		d2 := itgDeleteObjects(ctx, s.c, s.buckets[0], keys[1000:])
		count := func(o string) string {
			if !strings.HasPrefix(o, "ok deleted ") {
				return o
			}
			return fmt.Sprint(strings.Count(o, `"page/`))
		}
		errs := strings.Count(d1, ": ") + strings.Count(d2, ": ")
		return fmt.Sprintf("ok deleted %s + %s, errors %d", count(d1), count(d2), errs)
	})
	e.both(t, "list after deleting everything", "ok keys [] prefixes []", func(s *itgSide) string {
		return itgList(ctx, s.c, s.buckets[0], "", "", 0).String()
	})
	e.deleteBuckets(t)
}

// itgAwkwardKeys are object keys that proxies have broken: characters that URL
// encoders disagree on, Unicode in both normal forms, dot segments, double and
// trailing slashes, a key at the length limit's neighbourhood.
var itgAwkwardKeys = []string{
	"a b", "a+b", "100%", "100%25", "k=v", "user@host", "c:d", "~tilde", "star*",
	"semi;colon", "caf\u00e9", "cafe\u0301", "dir//double", "./dot", "../dotdot",
	"trailing/", strings.Repeat("k", 1000), itgLongSegmentedKey(), "sp ace/and+plus/=eq",
	"quote'\"", "hash#frag", "question?mark", "ampersand&", "brackets[]{}", "comma,",
	"dollar$", "excl!", "unicode-日本語/ключ",
}

// itgLongSegmentedKey is a 1,000-byte key made of 200-byte path segments, which a
// posix backend can store (one 1,000-byte file name it cannot).
func itgLongSegmentedKey() string {
	seg := strings.Repeat("s", 199)
	return strings.Join([]string{seg, seg, seg, seg, seg + "s"}, "/")
}

// itgUncleanPath reports whether a key puts "//" or a dot segment in the
// URL path: http.ServeMux redirects such paths to their cleaned form, so they
// cannot go through a proxy mounted on a mux.
func itgUncleanPath(key string) bool {
	if strings.Contains(key, "//") {
		return true
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// TestIntegrationAwkwardKeys puts, heads, gets, lists, copies and deletes
// every awkward key, with virtual-hosted and path-style upstream requests.
func TestIntegrationAwkwardKeys(t *testing.T) {
	t.Parallel()
	itgEachUpstreamStyle(t, func(t *testing.T, e *itgEnv) {
		itgKeyOps(t, e, itgAwkwardKeys, true)
	})
}

// itgKeyOps runs every key through put, list, head, get, (copy,) delete on both
// sides, compares the outcomes and logs them as a table.
func itgKeyOps(t *testing.T, e *itgEnv, keys []string, withCopy bool) {
	ctx := t.Context()
	e.createBuckets(t)
	ops := []string{"put", "list", "head", "get", "presigned get"}
	if withCopy {
		ops = append(ops, "copy")
	}
	ops = append(ops, "delete")
	results := map[string]map[string][2]string{} // key → op → direct, proxy
	record := func(key, op string, fn func(s *itgSide) string) {
		if results[key] == nil {
			results[key] = map[string][2]string{}
		}
		d, p := fn(e.direct), fn(e.proxy)
		results[key][op] = [2]string{d, p}
		if itgLeavesBucket(key) && op != "list" && (e.pathStyle || op == "copy") {
			// Refused on purpose: a key whose dot segments climb out of its
			// bucket is refused with 400 on a path-style upstream, and as a
			// copy source: an upstream that resolves dot segments would
			// otherwise serve another bucket. versitygw refuses such keys
			// too, with other codes.
			if !strings.HasPrefix(p, "ERR 400") {
				t.Errorf("%s %q: proxy %q, want a 400 refusal (direct %q)", op, key, p, d)
			}
			return
		}
		if d != p {
			t.Errorf("%s %q: direct %q, proxy %q", op, key, d, p)
		}
	}
	body := func(key string) []byte {
		if strings.HasSuffix(key, "/") {
			return []byte{} // a "folder" marker: S3 allows a body, a posix backend does not
		}
		return []byte("body of " + key)
	}
	meta := map[string]string{"k": "v"}

	for _, k := range keys {
		record(k, "put", func(s *itgSide) string { return itgPut(ctx, s.c, s.buckets[0], k, body(k), meta) })
	}
	// Listing: the whole bucket, compared name for name, then each key found
	// by name and by prefix.
	all := e.both(t, "list all awkward keys", "", func(s *itgSide) string {
		return itgList(ctx, s.c, s.buckets[0], "", "", 0).String()
	})
	e.both(t, "list all awkward keys with encoding-type=url", "", func(s *itgSide) string {
		out, err := s.c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.buckets[0], EncodingType: types.EncodingTypeUrl})
		if err != nil {
			return itgOutcome(err)
		}
		var names []string
		for _, o := range out.Contents {
			names = append(names, aws.ToString(o.Key))
		}
		return fmt.Sprintf("ok %q", names)
	})
	for _, k := range keys {
		record(k, "list", func(s *itgSide) string {
			l := itgList(ctx, s.c, s.buckets[0], k, "", 0)
			if l.err != nil {
				return itgOutcome(l.err)
			}
			if !slices.Contains(l.keys, k) {
				return fmt.Sprintf("not listed by prefix (listed: %+q)", l.keys[:min(len(l.keys), 3)])
			}
			return "ok"
		})
	}
	for _, k := range keys {
		record(k, "head", func(s *itgSide) string {
			o := itgHead(ctx, s.c, s.buckets[0], k)
			want := fmt.Sprintf(`ok size %d, type "application/octet-stream", meta {k=v}`, len(body(k)))
			if o == want {
				return "ok"
			}
			return o
		})
		record(k, "get", func(s *itgSide) string {
			o := itgGet(ctx, s.c, s.buckets[0], k, "", body(k))
			if o == itgBodyOutcome(body(k), body(k)) {
				return "ok"
			}
			return o
		})
		record(k, "presigned get", func(s *itgSide) string {
			req, err := s3.NewPresignClient(s.c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &s.buckets[0], Key: &k})
			if err != nil {
				return "presign: " + err.Error()
			}
			o := itgPresigned(ctx, s.hc, req.Method, req.URL, req.SignedHeader, nil)
			if o == "200 "+itgHash(body(k)) {
				return "ok"
			}
			return o
		})
		if withCopy {
			// Copies go to the second bucket, where they are deleted in one
			// DeleteObjects at the end.
			record(k, "copy", func(s *itgSide) string {
				if o := itgCopy(ctx, s.c, s.buckets[0], k, s.buckets[1], k); o != "ok" {
					return o
				}
				o := itgGet(ctx, s.c, s.buckets[1], k, "", body(k))
				if o != itgBodyOutcome(body(k), body(k)) {
					return "copied, then get: " + o
				}
				return "ok"
			})
		}
		record(k, "delete", func(s *itgSide) string {
			if o := itgDelete(ctx, s.c, s.buckets[0], k); o != "ok" {
				return o
			}
			if o := itgHead(ctx, s.c, s.buckets[0], k); o != "ERR 404 NotFound" {
				return "deleted, then head: " + o
			}
			return "ok"
		})
	}
	e.both(t, "list after deleting every key", "ok keys [] prefixes []", func(s *itgSide) string {
		return itgList(ctx, s.c, s.buckets[0], "", "", 0).String()
	})
	if withCopy {
		e.both(t, "batch delete of every copy", "", func(s *itgSide) string {
			return itgDeleteObjects(ctx, s.c, s.buckets[1], keys)
		})
		e.both(t, "list after deleting every copy", "ok keys [] prefixes []", func(s *itgSide) string {
			return itgList(ctx, s.c, s.buckets[1], "", "", 0).String()
		})
	}
	e.deleteBuckets(t)

	// The table: key → direct outcome / proxy outcome.
	var b strings.Builder
	var limits []string
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "key\tthrough the proxy\tversitygw direct (%s)\n", strings.Join(ops, ", "))
	for _, k := range keys {
		d, p := itgSummarize(results[k], ops, 0), itgSummarize(results[k], ops, 1)
		if d != p {
			p = "DIFFERENT: " + p
		} else {
			p = "same"
		}
		if d != "all ok" {
			limits = append(limits, itgDisplayKey(k))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", itgDisplayKey(k), p, d)
	}
	_ = tw.Flush()
	t.Logf("awkward keys, %d ops each on both sides:\n%s", len(ops), b.String())
	t.Logf("listing of all keys after the puts (same on both sides unless reported): %s", itgTruncate(all, 400))
	if len(limits) > 0 {
		t.Logf("versitygw itself cannot handle every step for %d keys (its posix backend maps keys to file paths): %s",
			len(limits), strings.Join(limits, ", "))
	}
}

// itgSummarize reduces one key's results on one side to "all ok" or the list of
// steps that did not succeed.
func itgSummarize(res map[string][2]string, ops []string, i int) string {
	var bad []string
	for _, op := range ops {
		if o := res[op][i]; o != "ok" {
			bad = append(bad, op+": "+o)
		}
	}
	if len(bad) == 0 {
		return "all ok"
	}
	return strings.Join(bad, "; ")
}

func itgDisplayKey(k string) string {
	if len(k) > 40 {
		return fmt.Sprintf("%+q… (%d bytes)", k[:12], len(k))
	}
	return fmt.Sprintf("%+q", k)
}

func itgTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// TestIntegrationKeyStaysInBucket sends keys with dot segments that, resolved,
// would name another bucket: "../<other bucket>/secret". The other bucket is
// one the proxy does not serve; its object must never come back, whatever the
// upstream style.
func TestIntegrationKeyStaysInBucket(t *testing.T) {
	t.Parallel()
	itgEachUpstreamStyle(t, func(t *testing.T, e *itgEnv) {
		ctx := t.Context()
		e.createBuckets(t)
		// The secret lives in the direct side's second bucket: the proxy
		// does not serve it, versitygw's root user can read it.
		other := e.direct.buckets[1]
		secret := []byte("secret in " + other)
		require.Equal(t, "ok", itgPut(ctx, e.direct.c, other, "secret", secret, nil))
		for _, key := range []string{"../" + other + "/secret", "x/../../" + other + "/secret", "./../" + other + "/secret"} {
			out := itgGet(ctx, e.proxy.c, e.proxy.buckets[0], key, "", secret)
			if strings.HasPrefix(out, "ok") {
				t.Errorf("GET %q in bucket %s through the proxy answered %s: the key left its bucket", key, e.proxy.buckets[0], out)
			}
		}
		_ = itgDelete(ctx, e.direct.c, other, "secret")
		e.deleteBuckets(t)
	})
}
