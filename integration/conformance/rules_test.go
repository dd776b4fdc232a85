package conformance

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/osproxy/proxy"
	"github.com/stretchr/testify/require"
)

// TestRequestRulesClients runs aws-cli and boto3, unmodified, through a proxy
// whose request-level authorizer (WithRequestAuthorizer) has per-key rules:
// a read-only client gets 403 on PUT and DELETE, a client scoped to
// tenant-a/ lists and writes only that prefix, and a multi-object delete that
// names a key outside it is refused whole.
func TestRequestRulesClients(t *testing.T) {
	var specs []*clientSpec
	for _, p := range candidates("aws", "/usr/bin/aws") {
		if out, err := probe(p, "--version"); err == nil {
			if m := regexp.MustCompile(`aws-cli/(2\.[0-9.]+)`).FindStringSubmatch(out); m != nil {
				specs = append(specs, awsCLIClient("awscli2", p, m[1]))
				break
			}
		}
	}
	if out, err := probe("/usr/bin/python3", "-c", "import boto3; print(boto3.__version__)"); err == nil {
		specs = append(specs, boto3Client("boto3deb", "/usr/bin/python3", strings.TrimSpace(out)))
	}
	if len(specs) < 2 && requireIntegration() {
		t.Errorf("aws-cli v2 and boto3 are needed; found %d of them", len(specs))
	}
	if len(specs) == 0 {
		t.Skip("no client")
	}
	rules := func(_ context.Context, r proxy.AccessRequest) (proxy.Decision, error) {
		switch r.Token {
		case "reader":
			ok := r.Action == "s3:GetObject" || r.Action == "s3:ListBucket"
			return proxy.Decision{Allow: ok, Scope: proxy.ScopeBucket}, nil
		case "tenant-a":
			if r.Action == "s3:ListBucket" {
				return proxy.Decision{Allow: strings.HasPrefix(r.Prefix, "tenant-a/"), Scope: proxy.ScopeKey}, nil
			}
			return proxy.Decision{Allow: strings.HasPrefix(r.Key, "tenant-a/"), Scope: proxy.ScopeKey}, nil
		}
		return proxy.Decision{Allow: true, Scope: proxy.ScopeBucket}, nil
	}
	v := versity(t, false)
	p := newVGWProxy(t, v, nil, proxy.WithRequestAuthorizer(rules),
		proxy.WithClientKeys(map[string]string{clientKey: clientSecret, "reader": "reader-secret", "tenant-a": "tenant-a-secret"}))
	srv := serve(t, p, false)
	orc := oracle(t, v)
	for _, spec := range specs {
		t.Run(spec.id, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			bucket := "osp-rules-" + spec.id
			_, err := orc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket})
			require.NoError(t, err)
			for _, k := range []string{"tenant-a/x", "tenant-b/y", "shared/z"} {
				require.NoError(t, oraclePut(ctx, orc, bucket, k, []byte("stored "+k)))
			}
			open := func(key, secret string) ops {
				o, err := spec.open(t, target{side: "proxy", scheme: "http", url: "http://" + srv.addr(), key: key, secret: secret, vgw: v}, t.TempDir())
				require.NoError(t, err)
				t.Cleanup(o.Close)
				return o
			}
			work := t.TempDir()
			file := filepath.Join(work, "f")
			require.NoError(t, os.WriteFile(file, []byte("new"), 0o644))

			reader := open("reader", "reader-secret")
			require.NoError(t, reader.Get(ctx, bucket, "shared/z", filepath.Join(work, "got")), "a reader reads")
			_, _, err = reader.List(ctx, bucket, "", "")
			require.NoError(t, err, "a reader lists")
			require.Error(t, reader.Put(ctx, bucket, "shared/new", file), "a reader cannot write")
			require.Error(t, reader.DeleteBatch(ctx, bucket, "shared/", []string{"shared/z"}), "a reader cannot delete")

			tenant := open("tenant-a", "tenant-a-secret")
			require.NoError(t, tenant.Put(ctx, bucket, "tenant-a/new", file), "tenant-a writes its prefix")
			require.Error(t, tenant.Put(ctx, bucket, "tenant-b/new", file), "but not another")
			keys, _, err := tenant.List(ctx, bucket, "tenant-a/", "")
			require.NoError(t, err, "tenant-a lists its prefix")
			require.ElementsMatch(t, []string{"tenant-a/x", "tenant-a/new"}, keys)
			_, _, err = tenant.List(ctx, bucket, "", "")
			require.Error(t, err, "but not the bucket")
			require.Error(t, tenant.DeleteBatch(ctx, bucket, "", []string{"tenant-a/x", "tenant-b/y"}), "a mixed multi-object delete is refused whole")
			left, err := oracleKeys(ctx, orc, bucket, "")
			require.NoError(t, err)
			require.ElementsMatch(t, []string{"tenant-a/x", "tenant-a/new", "tenant-b/y", "shared/z"}, left, "nothing deleted")
			require.NoError(t, tenant.DeleteBatch(ctx, bucket, "tenant-a/", []string{"tenant-a/x", "tenant-a/new"}), "its own keys")
			left, err = oracleKeys(ctx, orc, bucket, "")
			require.NoError(t, err)
			require.ElementsMatch(t, []string{"tenant-b/y", "shared/z"}, left)
		})
	}
}
