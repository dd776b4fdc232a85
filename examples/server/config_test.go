package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeFile writes text to a file of a fresh temporary directory.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadTest parses args after -config with a file holding text.
func loadTest(t *testing.T, text string, args ...string) (config, string, error) {
	t.Helper()
	path := writeFile(t, "cfg.yaml", text)
	cfg, err := parseConfig(append([]string{"-config", path}, args...), io.Discard)
	return cfg, path, err
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key to files and
// returns their paths and the certificate's pool.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "osproxy test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestConfigExample checks that the shipped sample is valid, given the
// environment variables it names and a certificate where it expects one.
func TestConfigExample(t *testing.T) {
	for _, v := range []string{"OSP_ANALYTICS_SECRET", "OSP_BACKUP_JOB_SECRET", "OSP_REPORTS_API_KEY",
		"OSP_BACKUPS_ACCESS_KEY_ID", "OSP_BACKUPS_SECRET_ACCESS_KEY"} {
		t.Setenv(v, "value-of-"+v)
	}
	t.Setenv("OSP_AWS_CONFIG_FILE", writeFile(t, "aws-config", "[profile osproxy-archive]\ncredential_process = /bin/false\n"))
	t.Setenv("OSP_AWS_CREDENTIALS_FILE", writeFile(t, "aws-credentials", ""))
	cert, key, _ := selfSignedCert(t)
	cfg, err := parseConfig([]string{"-config", "config.example.yaml", "-tls-cert", cert, "-tls-key", key}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Buckets) != 3 || cfg.Buckets[0].APIKey.Value != "value-of-OSP_REPORTS_API_KEY" ||
		cfg.Buckets[1].SecretAccessKey.Value != "value-of-OSP_BACKUPS_SECRET_ACCESS_KEY" || !cfg.Buckets[1].PathStyle.Value ||
		cfg.profiles["osproxy-archive"] == nil {
		t.Errorf("buckets = %+v", cfg.Buckets)
	}
	if cfg.cert == nil || cfg.Server.ShutdownDelay.Value != 5*time.Second || cfg.Clients.Mode.Value != modeVerified {
		t.Errorf("config = %+v", cfg)
	}
	// Every field of the schema is in the sample.
	sample, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range yamlFields(cfg) {
		if !strings.Contains(string(sample), field+":") {
			t.Errorf("config.example.yaml does not show %s", field)
		}
	}
}

func TestConfigGood(t *testing.T) {
	t.Setenv("TEST_SECRET", `se"cr:et #1`) // what would break YAML if pasted in
	t.Setenv("TEST_PORT", "9000")
	t.Setenv("TEST_EMPTY", "")
	cfg, _, err := loadTest(t, `
server:
  listen: 127.0.0.1:7000
  shutdown_timeout: 1m
  shutdown_delay: 2s
log: {level: debug, format: text}
clients:
  mode: verified
  keys:
    - {access_key_id: alice, secret_access_key: "${TEST_SECRET}"}
    - access_key_id: bob
      secret_access_key: ${TEST_EMPTY:-bob-default}
buckets:
  - name: alpha
    host: minio.example
    port: ${TEST_PORT}
    scheme: ${TEST_SCHEME:-http}
    path_style: true
    access_key_id: literal-$${NOT_EXPANDED}
    secret_access_key: ${TEST_SECRET}
    allow: [bob]
  - name: beta
    host: s3.eu-de.cloud-object-storage.appdomain.cloud
    api_key: ${TEST_SECRET}
cache: {auth_ttl: 30s, auth_capacity: 10}
upstream: {payload_check: true}
`)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Buckets[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Server.Listen.Value, "127.0.0.1:7000"},
		{"listen line", cfg.Server.Listen.Line, 3},
		{"admin default", cfg.Admin.Listen.Value, "127.0.0.1:6191"},
		{"shutdown timeout", cfg.Server.ShutdownTimeout.Value, time.Minute},
		{"log", cfg.Log.Level.Value + "/" + cfg.Log.Format.Value, "debug/text"},
		{"quoted secret", cfg.Clients.Keys[0].SecretAccessKey.Value, `se"cr:et #1`},
		{"default for empty", cfg.Clients.Keys[1].SecretAccessKey.Value, "bob-default"},
		{"port from env", a.Port.Value, 9000},
		{"default for unset", a.Scheme.Value, "http"},
		{"escaped", a.AccessKeyID.Value, "literal-${NOT_EXPANDED}"},
		{"plain secret", a.SecretAccessKey.Value, `se"cr:et #1`},
		{"allow", a.Allow[0].Value, "bob"},
		{"auth ttl", cfg.Cache.AuthTTL.Value, 30 * time.Second},
		{"iam default", cfg.IAM.Endpoint.Value, "https://iam.cloud.ibm.com/identity/token"},
		{"payload check", cfg.Upstream.PayloadCheck.Value, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	if n := len(cfg.proxyOptions()); n < 7 {
		t.Errorf("%d proxy options", n)
	}
}

// TestConfigBad checks that each wrong file is refused with the line that is
// wrong and a message that says why.
func TestConfigBad(t *testing.T) {
	const bucket = "buckets:\n  - {name: alpha, host: h, access_key_id: k, secret_access_key: s}\n"
	const clients = "clients:\n  keys: [{access_key_id: alice, secret_access_key: s}]\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"empty file", "", []string{"cfg.yaml: the file is empty"}},
		{"syntax", clients + bucket + "server:\n  listen: a:1\n\tadmin: b\n", []string{"cfg.yaml:6: found a tab character"}},
		{"unknown top-level field", clients + bucket + "lsiten: x\n", []string{`cfg.yaml:5: unknown field "lsiten" at the top level`}},
		{"unknown bucket field", clients + "buckets:\n  - name: alpha\n    host: h\n    prot: 9000\n", []string{`cfg.yaml:6: unknown field "prot" in a bucket`}},
		{"unknown nested field", "server:\n  tls: {cert: x}\n" + clients + bucket, []string{`cfg.yaml:2: unknown field "cert" in server.tls`}},
		{"duplicate key", "server:\n  listen: a:1\n  listen: b:2\n" + clients + bucket, []string{"cfg.yaml:3:", `"listen" already defined`}},
		{"wrong type", clients + "buckets:\n  - name: alpha\n    host: h\n    port: http\n", []string{`cfg.yaml:6: "http" is not a valid integer`}},
		{"duration without unit", clients + bucket + "iam: {timeout: 10}\n", []string{`cfg.yaml:5: "10" is not a valid duration`}},
		{"list for a scalar", clients + bucket + "log: {level: [info]}\n", []string{"cfg.yaml:5: expected a single value, found a list"}},
		{"unset variable", clients + bucket + "iam: {endpoint: \"${TEST_UNSET_VARIABLE}\"}\n", []string{"cfg.yaml:5: environment variable TEST_UNSET_VARIABLE is not set"}},
		{"unterminated reference", clients + bucket + "iam: {endpoint: \"${X\"}\n", []string{"cfg.yaml:5:", `without its closing "}"`}},
		{"two documents", clients + bucket + "---\nserver: {}\n", []string{"cfg.yaml:5: a second YAML document"}},
		{"no buckets", clients, []string{"cfg.yaml: no buckets"}},
		{"no client keys", bucket, []string{"verified mode needs at least one entry in clients.keys"}},
		{"bad mode", "clients: {mode: open}\n" + bucket, []string{`cfg.yaml:1: clients.mode "open": want verified or token`}},
		{"tokens in verified mode", clients + "  tokens: [x]\n" + bucket, []string{"cfg.yaml:3: clients.tokens is for token mode"}},
		{"token mode without tokens", "clients: {mode: token}\n" + bucket, []string{"cfg.yaml:1: token mode needs at least one entry"}},
		{"use limit in token mode", "clients: {mode: token, tokens: [t], max_presigned_uses: 3}\n" + bucket, []string{"cfg.yaml:1: clients.max_presigned_uses needs verified mode"}},
		{"duplicate client", "clients:\n  keys:\n    - {access_key_id: a, secret_access_key: s}\n    - {access_key_id: a, secret_access_key: t}\n" + bucket,
			[]string{`cfg.yaml:4: client access key id "a" is listed twice`}},
		{"host with scheme", clients + "buckets:\n  - name: alpha\n    host: https://h\n    api_key: k\n", []string{`cfg.yaml:5: bucket "alpha": host "https://h" holds a scheme`}},
		{"no credentials", clients + "buckets:\n  - name: alpha\n    host: h\n", []string{`cfg.yaml:4: bucket "alpha": no credentials`}},
		{"two kinds of credentials", clients + "buckets:\n  - name: alpha\n    host: h\n    api_key: k\n    access_key_id: a\n    secret_access_key: s\n",
			[]string{`cfg.yaml:6: bucket "alpha": give either HMAC keys or an api_key`}},
		{"half an HMAC pair", clients + "buckets:\n  - name: alpha\n    host: h\n    access_key_id: a\n", []string{`cfg.yaml:6: bucket "alpha": access_key_id without secret_access_key`}},
		{"bad bucket name", clients + "buckets:\n  - {name: Not_Valid, host: h, api_key: k}\n", []string{`cfg.yaml:4: bucket "Not_Valid": not a valid S3 bucket name`}},
		{"duplicate bucket", clients + bucket + "  - {name: alpha, host: h, api_key: k}\n", []string{`cfg.yaml:5: bucket "alpha" is listed twice`}},
		{"allow names a stranger", clients + "buckets:\n  - {name: alpha, host: h, api_key: k, allow: [mallory]}\n", []string{`cfg.yaml:4: bucket "alpha": allow names "mallory", which is not in clients.keys`}},
		{"bad listen", "server: {listen: 6190}\n" + clients + bucket, []string{`cfg.yaml:1: listen address "6190": want host:port`}},
		{"admin on the proxy's address", "server: {listen: 127.0.0.1:7000}\nadmin: {listen: 127.0.0.1:7000}\n" + clients + bucket, []string{"cfg.yaml:2: the admin listener needs an address of its own"}},
		{"bad log level", "log: {level: verbose}\n" + clients + bucket, []string{`cfg.yaml:1: log level "verbose"`}},
		{"delay past timeout", "server: {shutdown_timeout: 10s, shutdown_delay: 10s}\n" + clients + bucket, []string{"cfg.yaml:1: shutdown_delay 10s must be"}},
		{"TLS cert without key", "server: {tls: {cert_file: c.pem}}\n" + clients + bucket, []string{"cfg.yaml:1: a TLS certificate needs its key too"}},
		{"TLS files missing", "server: {tls: {cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}}\n" + clients + bucket, []string{"cfg.yaml:1: TLS certificate and key:", "no such file"}},
		{"bad IAM endpoint", clients + bucket + "iam: {endpoint: iam.cloud.ibm.com}\n", []string{`cfg.yaml:5: iam.endpoint "iam.cloud.ibm.com" is not an http(s) URL`}},
		{"browser key not a client", clients + bucket + "browser: {listen: 127.0.0.1:7002, client_key: mallory}\n", []string{`cfg.yaml:5: browser.client_key "mallory" is not in clients.keys`}},
		{"browser without a key", clients + bucket + "browser: {listen: 127.0.0.1:7002}\n", []string{"cfg.yaml:5: the browser page needs browser.client_key"}},
		{"browser in token mode", "clients: {mode: token, tokens: [t]}\n" + bucket + "browser: {listen: 127.0.0.1:7002, client_key: t}\n", []string{"cfg.yaml:4: the browser page presigns with the secret of a client key: it needs clients.mode verified"}},
		{"browser bucket not routed", clients + bucket + "browser: {listen: 127.0.0.1:7002, client_key: alice, bucket: beta}\n", []string{`cfg.yaml:5: browser.bucket "beta" is not in buckets`}},
		{"browser proxy_url with a path", clients + bucket + "browser: {listen: 127.0.0.1:7002, client_key: alice, proxy_url: \"https://h/s3\"}\n", []string{`cfg.yaml:5: browser.proxy_url "https://h/s3": want scheme://host[:port] alone`}},
		{"browser on the proxy's address", "server: {listen: 127.0.0.1:7000}\nbrowser: {listen: 127.0.0.1:7000, client_key: alice}\n" + clients + bucket, []string{"cfg.yaml:2: the browser page needs an address of its own"}},
		{"cors rule without origins", clients + bucket + "cors:\n  - allowed_methods: [GET]\n", []string{"cfg.yaml:6: a cors rule needs allowed_origins"}},
		{"cors bad method", clients + bucket + "cors:\n  - allowed_origins: [\"*\"]\n    allowed_methods: [GET, PATCH]\n", []string{`cfg.yaml:7: cors method "PATCH"`}},
		{"cors two wildcards", clients + bucket + "cors:\n  - allowed_origins: [\"https://*.*.example\"]\n    allowed_methods: [GET]\n", []string{`cfg.yaml:6: "https://*.*.example": at most one * wildcard`}},
		{"aws_profile and keys", clients + "buckets:\n  - name: alpha\n    host: h\n    access_key_id: a\n    secret_access_key: s\n    aws_profile: p\n",
			[]string{`cfg.yaml:8: bucket "alpha": give one of HMAC keys, an api_key or an aws_profile`}},
		{"unknown aws_profile", clients + "buckets:\n  - {name: alpha, host: h, aws_profile: nope}\naws: {config_file: \"${TEST_AWS_CONFIG}\", credentials_file: \"${TEST_AWS_CONFIG}\"}\n",
			[]string{`cfg.yaml:4: bucket "alpha": aws_profile "nope" is in none of the AWS config files`}},
		{"missing AWS config file", clients + "buckets:\n  - {name: alpha, host: h, aws_profile: p}\naws: {config_file: /nonexistent/aws-config}\n",
			[]string{"cfg.yaml:5:", "no such file"}},
		{"bad OTLP endpoint", clients + bucket + "telemetry: {otlp_endpoint: \"127.0.0.1:4318\"}\n", []string{`cfg.yaml:5: telemetry.otlp_endpoint "127.0.0.1:4318"`}},
		{"bad sample ratio", clients + bucket + "telemetry: {otlp_endpoint: \"http://127.0.0.1:4318\", sample_ratio: 2}\n", []string{"cfg.yaml:5: telemetry.sample_ratio must be from 0 to 1"}},
		{"OTLP headers without endpoint", clients + bucket + "telemetry:\n  headers: {authorization: x}\n", []string{"cfg.yaml:6: telemetry.headers without telemetry.otlp_endpoint"}},
		{"several problems, in line order", "log: {format: xml}\n" + clients + "buckets:\n  - {name: alpha, host: h}\n" + "cache: {auth_ttl: 0s}\n",
			[]string{"cfg.yaml:1: log format", "cfg.yaml:5: bucket \"alpha\": no credentials", "cfg.yaml:6: cache.auth_ttl must be positive"}},
	}
	t.Setenv("TEST_AWS_CONFIG", writeFile(t, "aws-config", "[profile other]\nregion = eu-west-1\n"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadTest(t, tt.yaml)
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want a configuration error", err)
			}
			msg := err.Error()
			last := -1
			for _, w := range tt.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Errorf("error does not say %q:\n%s", w, msg)
				} else if i < last {
					t.Errorf("%q is not in line order:\n%s", w, msg)
				}
				last = i
			}
		})
	}
}

// TestConfigNoSecretInErrors: a value from the environment that does not fit
// is reported by its reference, never by its value.
func TestConfigNoSecretInErrors(t *testing.T) {
	t.Setenv("TEST_SECRET_PORT", "hunter2")
	_, _, err := loadTest(t, "buckets:\n  - name: alpha\n    host: h\n    api_key: k\n    port: ${TEST_SECRET_PORT}\n")
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "${TEST_SECRET_PORT} does not expand to a valid integer") {
		t.Errorf("error = %v", err)
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	cert, key, _ := selfSignedCert(t)
	file := `
server:
  listen: 127.0.0.1:7000
  shutdown_timeout: 1m
admin: {listen: 127.0.0.1:7001}
log: {level: warn, format: json}
clients:
  keys: [{access_key_id: alice, secret_access_key: s}]
buckets:
  - {name: alpha, host: h, api_key: k}
`
	cfg, _, err := loadTest(t, file, "-listen", "127.0.0.1:0", "-admin-listen", "", "-log-level", "debug",
		"-log-format", "text", "-shutdown-timeout", "5s", "-tls-cert", cert, "-tls-key", key)
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Server.Listen; s.Value != "127.0.0.1:0" || s.Flag != "-listen" || s.Line != 0 {
		t.Errorf("listen = %+v", s)
	}
	if cfg.Admin.Listen.Value != "" || cfg.Log.Level.Value != "debug" || cfg.Log.Format.Value != "text" ||
		cfg.Server.ShutdownTimeout.Value != 5*time.Second || cfg.cert == nil {
		t.Errorf("flags did not override the file: %+v", cfg)
	}

	// Without the flags, the file's values stand.
	cfg, _, err = loadTest(t, file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen.Value != "127.0.0.1:7000" || cfg.Log.Level.Value != "warn" || cfg.Server.ShutdownTimeout.Value != time.Minute {
		t.Errorf("file values lost: %+v", cfg)
	}

	// A problem caused by a flag names the flag.
	_, _, err = loadTest(t, file, "-admin-listen", "nowhere")
	if err == nil || !strings.Contains(err.Error(), `flag -admin-listen: listen address "nowhere"`) {
		t.Errorf("error = %v, want one naming -admin-listen", err)
	}
	_, _, err = loadTest(t, file, "-tls-key", key)
	if err == nil || !strings.Contains(err.Error(), "flag -tls-key: a TLS key needs its certificate too") {
		t.Errorf("error = %v, want one naming -tls-key", err)
	}
	// TLS is not for the demo.
	if _, err := parseConfig([]string{"-tls-cert", cert, "-tls-key", key}, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("demo with -tls-cert: %v, want a usage error", err)
	}
	if _, err := parseConfig([]string{"-log-format", "xml"}, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("-log-format xml: %v, want a usage error", err)
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "alpha", "EMPTY": "", "DOLLAR": "${A}"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	good := map[string]string{
		"":                 "",
		"plain":            "plain",
		"$A and $":         "$A and $",
		"${A}":             "alpha",
		"x${A}y${A}z":      "xalphayalphaz",
		"${EMPTY}":         "",
		"${EMPTY:-d}":      "d",
		"${UNSET:-d e f}":  "d e f",
		"${A:-d}":          "alpha",
		"$${A}":            "${A}",
		"${DOLLAR}":        "${A}", // not expanded again
		"pa$$word":         "pa$$word",
		"${UNSET:-}":       "",
		"${A}$${A}${A}":    "alpha${A}alpha",
		"{A} ${A}} ${A}{}": "{A} alpha} alpha{}",
	}
	for in, want := range good {
		if got, err := expandEnv(in, lookup); err != nil || got != want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"${UNSET}", "${A", "${}", "${1A}", "${A B}", "x${A}${UNSET}"} {
		if got, err := expandEnv(in, lookup); err == nil {
			t.Errorf("expandEnv(%q) = %q, want an error", in, got)
		}
	}
}

// TestMainExitsOnBadConfig runs the program itself: a bad file makes it exit
// 1 with a message naming the file and line; -check accepts a good one.
func TestMainExitsOnBadConfig(t *testing.T) {
	if os.Getenv("TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"server"}, strings.Fields(os.Getenv("TEST_MAIN_ARGS"))...)
		main()
		os.Exit(0)
	}
	runMain := func(args ...string) (int, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMainExitsOnBadConfig$")
		cmd.Env = append(os.Environ(), "TEST_RUN_MAIN=1", "TEST_MAIN_ARGS="+strings.Join(args, " "))
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	bad := writeFile(t, "bad.yaml", "buckets:\n  - name: alpha\n    hots: example.com\n")
	code, out := runMain("-config", bad)
	if code != 1 || !strings.Contains(out, "server: invalid configuration:\n  "+bad+`:3: unknown field "hots" in a bucket`) {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
	code, out = runMain("-config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || !strings.Contains(out, "server: config file: open") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
	code, out = runMain("-bogus")
	if code != 2 || !strings.Contains(out, "Usage: server") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
	good := writeFile(t, "good.yaml", "clients:\n  keys: [{access_key_id: a, secret_access_key: s}]\nbuckets:\n  - {name: alpha, host: h, api_key: k}\n")
	code, out = runMain("-config", good, "-check")
	if code != 0 || !strings.Contains(out, "configuration OK: http://127.0.0.1:6190, 1 buckets (alpha), clients in verified mode") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

// yamlFields lists the YAML field names of the config schema, nested ones too.
func yamlFields(v any) []string {
	var fields []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || strings.HasPrefix(t.Name(), "setting[") {
			return
		}
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields = append(fields, name)
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(v))
	return fields
}

// TestReadmeShowsTheSample: the sample in examples/README.md is
// config.example.yaml, word for word.
func TestReadmeShowsTheSample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sample, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```yaml\n"+string(sample)+"```\n") {
		t.Error("examples/README.md does not show config.example.yaml as it is: copy it over")
	}
}

// TestBrowserWarnings: a browser page open to the network, or without a cors
// section, is worth a warning at startup.
func TestBrowserWarnings(t *testing.T) {
	const base = "server: {listen: 127.0.0.1:7000}\nclients:\n  keys: [{access_key_id: alice, secret_access_key: s}]\n" +
		"buckets:\n  - {name: alpha, host: h, api_key: k}\n"
	cfg, _, err := loadTest(t, base+"browser: {listen: 0.0.0.0:7002, client_key: alice}\n")
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(cfg.insecure(), "\n")
	if !strings.Contains(w, `hands URLs presigned with client key "alice" to whoever reaches it`) || !strings.Contains(w, "there is no cors section") {
		t.Errorf("warnings:\n%s", w)
	}
	cfg, _, err = loadTest(t, base+"browser: {listen: 127.0.0.1:7002, client_key: alice}\ncors: [{allowed_origins: [\"http://127.0.0.1:7002\"], allowed_methods: [GET]}]\n")
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.insecure(); len(w) != 0 {
		t.Errorf("warnings: %q, want none", w)
	}
}
