package conformance

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osproxy/proxy"
	"github.com/stretchr/testify/require"
)

// TestSigV2Clients runs the clients that sign with AWS Signature Version 2 (s3cmd
// with signature_v2 and its signurl, boto3 with signature_version "s3", as
// boto2-era programs) through a proxy with WithSigV2, over http and https.
// versitygw takes no SigV2, so there is no baseline: every step must pass
// through the proxy, and what it stored is checked with the oracle.
func TestSigV2Clients(t *testing.T) {
	var specs []*clientSpec
	if p, err := exec.LookPath("s3cmd"); err == nil {
		specs = append(specs, s3cmdClientSigned(p, "", true))
	} else if requireIntegration() {
		t.Errorf("s3cmd: %v", err)
	}
	if out, err := probe("/usr/bin/python3", "-c", "import boto3; print(boto3.__version__)"); err == nil {
		specs = append(specs, boto3SigV2Client("/usr/bin/python3", strings.TrimSpace(out)))
	} else if requireIntegration() {
		t.Errorf("boto3: %v", err)
	}
	if len(specs) == 0 {
		t.Skip("no SigV2 client")
	}
	for _, useTLS := range []bool{false, true} {
		v := versity(t, useTLS)
		p := newVGWProxy(t, v, nil, append(debugLog(), proxy.WithSigV2(true))...)
		srv := serve(t, p, useTLS)
		scheme := map[bool]string{false: "http", true: "https"}[useTLS]
		tg := target{side: "proxy", scheme: scheme, url: scheme + "://" + srv.addr(), key: clientKey, secret: clientSecret, vgw: v}
		orc := oracle(t, v)
		for _, spec := range specs {
			t.Run(spec.id+"/"+scheme, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
				defer cancel()
				work := t.TempDir()
				o, err := spec.open(t, tg, work)
				require.NoError(t, err)
				defer o.Close()
				bucket := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace("osp-v2-" + spec.id + "-" + scheme))
				require.NoError(t, o.MakeBucket(ctx, bucket), "make bucket")
				body := randomBytes(300_000, 9)
				file := filepath.Join(work, "up.bin")
				require.NoError(t, os.WriteFile(file, body, 0o644))
				key := "dir/sp ace+plus.bin"
				require.NoError(t, o.Put(ctx, bucket, key, file), "put")
				stored, err := oracleGet(ctx, orc, bucket, key)
				require.NoError(t, err)
				require.True(t, bytes.Equal(body, stored), "stored what was sent")
				down := filepath.Join(work, "down.bin")
				require.NoError(t, o.Get(ctx, bucket, key, down), "get")
				got, err := os.ReadFile(down)
				require.NoError(t, err)
				require.True(t, bytes.Equal(body, got), "got what was stored")
				keys, _, err := o.List(ctx, bucket, "dir/", "")
				require.NoError(t, err, "list")
				require.Equal(t, []string{key}, keys)
				u, err := o.PresignGet(ctx, bucket, key)
				require.NoError(t, err, "presign")
				require.Contains(t, u, "Signature=", "a SigV2 presigned URL")
				hc := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}}
				defer hc.CloseIdleConnections()
				resp, err := hc.Get(u)
				require.NoError(t, err)
				got, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode, string(got))
				require.True(t, bytes.Equal(body, got), "presigned GET")
				resp, err = hc.Get(strings.Replace(u, "Expires=", "Expires=1", 1))
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, http.StatusForbidden, resp.StatusCode, "a changed Expires")
			})
		}
	}
}
