package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/aws"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/redisuse"
	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"
)

// config is the server's configuration: the YAML file's schema (see
// config.example.yaml), filled with defaults, then the file, then the flags.
// Every scalar is a setting, which remembers where its value came from, so
// that an error names the file's line or the flag.
type config struct {
	Server    serverConfig      `yaml:"server"`
	Admin     adminConfig       `yaml:"admin"`
	Log       logConfig         `yaml:"log"`
	Clients   clientsConfig     `yaml:"clients"`
	Buckets   []bucketConfig    `yaml:"buckets"`
	Cache     cacheConfig       `yaml:"cache"`
	IAM       iamConfig         `yaml:"iam"`
	Upstream  upstreamConfig    `yaml:"upstream"`
	VHosts    []setting[string] `yaml:"virtual_host_domains"`
	CORS      []corsRuleConfig  `yaml:"cors"`
	Browser   browserConfig     `yaml:"browser"`
	AWS       awsConfig         `yaml:"aws"`
	Telemetry telemetryConfig   `yaml:"telemetry"`

	// path is the config file; "" runs the demo.
	path string
	// cert is the TLS certificate, loaded by validate.
	cert *tls.Certificate
	// check asks to check the configuration and exit (-check).
	check bool
	// redis counts presigned-URL uses (clients.presigned_uses_redis); the
	// server closes it when it stops.
	redis *redis.Client
	// profiles are the credentials of the buckets' aws_profile, one per
	// profile, loaded by validate.
	profiles map[string]*aws.CredentialsCache
}

type serverConfig struct {
	Listen            setting[string]        `yaml:"listen"`
	TLS               tlsConfig              `yaml:"tls"`
	ReadHeaderTimeout setting[time.Duration] `yaml:"read_header_timeout"`
	IdleTimeout       setting[time.Duration] `yaml:"idle_timeout"`
	ShutdownTimeout   setting[time.Duration] `yaml:"shutdown_timeout"`
	ShutdownDelay     setting[time.Duration] `yaml:"shutdown_delay"`
}

type tlsConfig struct {
	CertFile setting[string] `yaml:"cert_file"`
	KeyFile  setting[string] `yaml:"key_file"`
}

type adminConfig struct {
	Listen setting[string] `yaml:"listen"`
}

type logConfig struct {
	Level  setting[string] `yaml:"level"`
	Format setting[string] `yaml:"format"`
}

type clientsConfig struct {
	Mode    setting[string]   `yaml:"mode"`
	Keys    []clientKey       `yaml:"keys"`
	Tokens  []setting[string] `yaml:"tokens"`
	SigV2   setting[bool]     `yaml:"sigv2"`
	Regions []setting[string] `yaml:"regions"`
	// MaxPresignedUses bounds the uses of one presigned URL; 0: unlimited.
	MaxPresignedUses setting[int] `yaml:"max_presigned_uses"`
	// UsesRedis is the Redis (host:port) where replicas count the uses
	// together; "": this process counts alone.
	UsesRedis setting[string] `yaml:"presigned_uses_redis"`
}

// ruleConfig is one rule of a client key: what it may do. A key with rules
// may do only what one of them allows.
type ruleConfig struct {
	Actions []setting[string] `yaml:"actions"` // S3 actions, e.g. s3:GetObject; "s3:*" for all
	Buckets []setting[string] `yaml:"buckets"` // default: any bucket
	Prefix  setting[string]   `yaml:"prefix"`  // keys and listing prefixes under it; default: any
}

type clientKey struct {
	AccessKeyID     setting[string] `yaml:"access_key_id"`
	SecretAccessKey setting[string] `yaml:"secret_access_key"`
	Rules           []ruleConfig    `yaml:"rules"`
}

type bucketConfig struct {
	Name              setting[string]   `yaml:"name"`
	Host              setting[string]   `yaml:"host"`
	Port              setting[int]      `yaml:"port"`
	Scheme            setting[string]   `yaml:"scheme"`
	Region            setting[string]   `yaml:"region"`
	PathStyle         setting[bool]     `yaml:"path_style"`
	AccessKeyID       setting[string]   `yaml:"access_key_id"`
	SecretAccessKey   setting[string]   `yaml:"secret_access_key"`
	APIKey            setting[string]   `yaml:"api_key"`
	ServiceInstanceID setting[string]   `yaml:"service_instance_id"`
	AWSProfile        setting[string]   `yaml:"aws_profile"`
	Allow             []setting[string] `yaml:"allow"`
	Anonymous         setting[bool]     `yaml:"anonymous"`
}

type cacheConfig struct {
	AuthTTL      setting[time.Duration] `yaml:"auth_ttl"`
	AuthCapacity setting[int]           `yaml:"auth_capacity"`
}

type iamConfig struct {
	Endpoint setting[string]        `yaml:"endpoint"`
	Timeout  setting[time.Duration] `yaml:"timeout"`
}

type upstreamConfig struct {
	ResponseHeaderTimeout setting[time.Duration] `yaml:"response_header_timeout"`
	PayloadCheck          setting[bool]          `yaml:"payload_check"`
}

// corsRuleConfig is one rule of the proxy's own CORS policy (proxy.CORSRule).
type corsRuleConfig struct {
	AllowedOrigins []setting[string] `yaml:"allowed_origins"`
	AllowedMethods []setting[string] `yaml:"allowed_methods"`
	AllowedHeaders []setting[string] `yaml:"allowed_headers"`
	ExposeHeaders  []setting[string] `yaml:"expose_headers"`
	MaxAgeSeconds  setting[int]      `yaml:"max_age_seconds"`
}

// browserConfig is the browser page (browser.go): a page on a listener of its
// own that lists a bucket and uploads to it through the proxy, with URLs and
// forms presigned here with a client key's secret.
type browserConfig struct {
	Listen    setting[string] `yaml:"listen"`     // "": no page
	ClientKey setting[string] `yaml:"client_key"` // access key id of clients.keys whose secret presigns
	Bucket    setting[string] `yaml:"bucket"`     // default: the first of buckets
	ProxyURL  setting[string] `yaml:"proxy_url"`  // the proxy as browsers reach it; default: its listener
}

// Client modes.
const (
	modeVerified = "verified" // every signature checked against clients.keys
	modeToken    = "token"    // the access key id is a token, taken on trust
)

// defaultConfig is the configuration before the file and the flags: the demo's,
// except for the log format, which is text for the demo.
func defaultConfig() config {
	return config{
		Server: serverConfig{
			Listen:            value("127.0.0.1:6190"),
			ReadHeaderTimeout: value(10 * time.Second),
			IdleTimeout:       value(2 * time.Minute),
			ShutdownTimeout:   value(30 * time.Second),
		},
		Admin:    adminConfig{Listen: value("127.0.0.1:6191")},
		Log:      logConfig{Level: value("info"), Format: value("json")},
		Clients:  clientsConfig{Mode: value(modeVerified)},
		Cache:    cacheConfig{AuthTTL: value(proxy.DefaultAuthCacheTTL), AuthCapacity: value(proxy.DefaultAuthCacheCapacity)},
		IAM:      iamConfig{Endpoint: value(proxy.DefaultIAMEndpoint), Timeout: value(proxy.DefaultIAMTimeout)},
		Upstream: upstreamConfig{ResponseHeaderTimeout: value(proxy.DefaultResponseHeaderTimeout)},
		Telemetry: telemetryConfig{ServiceName: value("osproxy"), SampleRatio: value(1.0),
			MetricInterval: value(time.Minute)},
	}
}

// setting is one scalar of the configuration: its value and where it came
// from (a line of the file, a flag, or neither for a default).
type setting[T any] struct {
	Value T
	Line  int    // line in the config file; 0 if not from the file
	Flag  string // the flag that set it, e.g. "-listen"
}

func value[T any](v T) setting[T] { return setting[T]{Value: v} }

// set is what a flag does to a setting.
func (s *setting[T]) set(v T, flag string) { *s = setting[T]{Value: v, Flag: flag} }

// UnmarshalYAML decodes a scalar after expanding the ${VAR} references in it,
// and records its line. A plain (unquoted) scalar is typed after expansion, so
// that `port: ${PORT}` is a number.
func (s *setting[T]) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return lineError(n.Line, "expected a single value, found a %s", kindName(n.Kind))
	}
	expanded, err := expandEnv(n.Value, os.LookupEnv)
	if err != nil {
		return lineError(n.Line, "%v", err)
	}
	c := *n
	if expanded != n.Value {
		c.Value = expanded
		if c.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			c.Tag = "" // resolve the expanded text
		}
	}
	var v T
	if err := c.Decode(&v); err != nil {
		if expanded != n.Value {
			// Not the expanded value in the message: it may be a secret.
			return lineError(n.Line, "%s does not expand to a valid %s", n.Value, typeName(v))
		}
		return lineError(n.Line, "%q is not a valid %s", n.Value, typeName(v))
	}
	*s = setting[T]{Value: v, Line: n.Line}
	return nil
}

// lineError is an error at a line of the config file, in yaml's own form, so
// that yaml collects it with the others.
func lineError(line int, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", line) + fmt.Sprintf(format, args...)}}
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "YAML node"
}

func typeName(v any) string {
	switch v.(type) {
	case time.Duration:
		return "duration (like 30s or 5m)"
	case int:
		return "integer"
	case bool:
		return "boolean (true or false)"
	case float64:
		return "number"
	}
	return reflect.TypeOf(v).String()
}

// expandEnv replaces each ${NAME} in s by the value of the environment
// variable NAME, and each ${NAME:-default} by the value, or default if NAME is
// unset or empty. $${ stands for a literal ${. A variable that is not set and
// has no default is an error; the result is not expanded again.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' { // $${: a literal ${
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New(`"${" without its closing "}" (write "$${" for a literal "${")`)
		}
		name, def, hasDef := strings.Cut(s[i+2:i+end], ":-")
		if !envName.MatchString(name) {
			return "", fmt.Errorf("${%s}: %q is not an environment variable name", name, name)
		}
		v, ok := lookup(name)
		if hasDef && v == "" {
			v, ok = def, true
		}
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// configError is a configuration that cannot run; its message lists every
// problem found, each with the file and line or the flag it comes from.
type configError struct{ problems []string }

func (e *configError) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.problems, "\n  ")
}

// loadConfig reads the config file at path over cfg. Unknown fields, values of
// the wrong type, unset environment variables and YAML syntax errors are
// reported with their lines.
func loadConfig(path string, cfg *config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return &configError{[]string{path + ": the file is empty"}}
		}
		return yamlError(path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return &configError{[]string{fmt.Sprintf("%s:%d: a second YAML document; the file must hold one", path, extra.Line)}}
	}
	cfg.path = path
	return nil
}

var (
	yamlLine     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownField = regexp.MustCompile(`^field (\S+) not found in type main\.(\w+)$`)
	sections     = map[string]string{
		"config": "at the top level", "serverConfig": "in server", "tlsConfig": "in server.tls",
		"adminConfig": "in admin", "logConfig": "in log", "clientsConfig": "in clients",
		"clientKey": "in a client key", "bucketConfig": "in a bucket", "cacheConfig": "in cache",
		"iamConfig": "in iam", "upstreamConfig": "in upstream", "corsRuleConfig": "in a cors rule",
		"browserConfig": "in browser", "awsConfig": "in aws", "telemetryConfig": "in telemetry",
	}
)

// yamlError turns yaml's errors into configError problems of the form
// path:line: message.
func yamlError(path string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	problems := make([]string, 0, len(msgs))
	for _, m := range msgs {
		m = strings.TrimSpace(m)
		if g := yamlLine.FindStringSubmatch(m); g != nil {
			msg := g[2]
			if f := unknownField.FindStringSubmatch(msg); f != nil {
				msg = fmt.Sprintf("unknown field %q %s", f[1], sections[f[2]])
			}
			problems = append(problems, fmt.Sprintf("%s:%s: %s", path, g[1], msg))
			continue
		}
		problems = append(problems, path+": "+strings.TrimPrefix(m, "yaml: "))
	}
	return &configError{problems}
}

// problems collects what validate finds.
type problems struct {
	path  string
	list  []string
	lines []int // of each problem, to sort them
}

// at reports a problem with a setting, located at its line or flag.
func at[T any](p *problems, s setting[T], format string, args ...any) {
	p.addAt(s.Line, s.Flag, format, args...)
}

func (p *problems) addAt(line int, flag, format string, args ...any) {
	p.list = append(p.list, where(p.path, line, flag)+": "+fmt.Sprintf(format, args...))
	p.lines = append(p.lines, line)
}

// sorted is the problems in the order of their lines; those of flags and
// of the whole file first.
func (p *problems) sorted() []string {
	idx := make([]int, len(p.list))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return p.lines[a] - p.lines[b] })
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = p.list[j]
	}
	return out
}

func where(path string, line int, flag string) string {
	switch {
	case flag != "":
		return "flag " + flag
	case line > 0:
		return fmt.Sprintf("%s:%d", path, line)
	case path != "":
		return path
	}
	return "configuration"
}

// validate checks what the file and the flags say, beyond what their types
// do, and loads the TLS certificate. proxy.New checks the proxy's part again.
func (c *config) validate() error {
	p := &problems{path: c.path}
	c.validateServer(p)
	if c.path != "" { // the demo brings its own buckets and keys
		c.validateClients(p)
		c.validateBuckets(p)
		c.validateProxy(p)
		c.validateCORS(p)
		c.validateBrowser(p)
		c.validateTelemetry(p)
	}
	if len(p.list) > 0 {
		return &configError{p.sorted()}
	}
	return nil
}

func (c *config) validateServer(p *problems) {
	s := c.Server
	checkAddr(p, s.Listen, false)
	checkAddr(p, c.Admin.Listen, true)
	if a := c.Admin.Listen.Value; a != "" && a == s.Listen.Value && !strings.HasSuffix(a, ":0") {
		at(p, c.Admin.Listen, "the admin listener needs an address of its own, not the proxy's %s", a)
	}
	checkAddr(p, c.Browser.Listen, true)
	if a := c.Browser.Listen.Value; a != "" && !strings.HasSuffix(a, ":0") && (a == s.Listen.Value || a == c.Admin.Listen.Value) {
		at(p, c.Browser.Listen, "the browser page needs an address of its own (another origin than the proxy's), not %s", a)
	}
	for _, d := range []setting[time.Duration]{s.ReadHeaderTimeout, s.IdleTimeout, s.ShutdownTimeout} {
		if d.Value <= 0 {
			at(p, d, "the duration must be positive, not %s", d.Value)
		}
	}
	if d := s.ShutdownDelay; d.Value < 0 || d.Value >= s.ShutdownTimeout.Value {
		at(p, d, "shutdown_delay %s must be at least 0 and less than shutdown_timeout %s", d.Value, s.ShutdownTimeout.Value)
	}
	switch c.Log.Level.Value {
	case "debug", "info", "warn", "error":
	default:
		at(p, c.Log.Level, "log level %q: want debug, info, warn or error", c.Log.Level.Value)
	}
	switch c.Log.Format.Value {
	case "json", "text":
	default:
		at(p, c.Log.Format, "log format %q: want json or text", c.Log.Format.Value)
	}
	cert, key := s.TLS.CertFile, s.TLS.KeyFile
	switch {
	case cert.Value == "" && key.Value == "":
	case cert.Value == "":
		at(p, key, "a TLS key needs its certificate too (server.tls.cert_file or -tls-cert)")
	case key.Value == "":
		at(p, cert, "a TLS certificate needs its key too (server.tls.key_file or -tls-key)")
	default:
		kp, err := tls.LoadX509KeyPair(cert.Value, key.Value)
		if err != nil {
			at(p, cert, "TLS certificate and key: %v", err)
			break
		}
		c.cert = &kp
	}
}

// checkAddr checks a listen address; an empty one is allowed only if it
// turns a listener off.
func checkAddr(p *problems, s setting[string], mayBeEmpty bool) {
	if s.Value == "" {
		if !mayBeEmpty {
			at(p, s, "a listen address is needed")
		}
		return
	}
	_, port, err := net.SplitHostPort(s.Value)
	if err != nil {
		at(p, s, "listen address %q: want host:port (or :port for every interface)", s.Value)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		at(p, s, "listen address %q: bad port", s.Value)
	}
}

func (c *config) validateClients(p *problems) {
	cl := c.Clients
	switch cl.Mode.Value {
	case modeVerified:
		if len(cl.Keys) == 0 {
			at(p, cl.Mode, "verified mode needs at least one entry in clients.keys")
		}
		if len(cl.Tokens) > 0 {
			at(p, cl.Tokens[0], "clients.tokens is for token mode; in verified mode list clients.keys")
		}
		seen := map[string]bool{}
		for _, k := range cl.Keys {
			id := k.AccessKeyID
			switch {
			case id.Value == "":
				p.addAt(firstLine(id.Line, k.SecretAccessKey.Line), "", "a client key needs an access_key_id")
			case seen[id.Value]:
				at(p, id, "client access key id %q is listed twice", id.Value)
			case k.SecretAccessKey.Value == "":
				at(p, id, "client key %q: secret_access_key is empty", id.Value)
			}
			seen[id.Value] = true
		}
	case modeToken:
		if len(cl.Keys) > 0 {
			at(p, cl.Keys[0].AccessKeyID, "clients.keys is for verified mode; token mode lets clients in by clients.tokens")
		}
		if len(cl.Tokens) == 0 {
			at(p, cl.Mode, "token mode needs at least one entry in clients.tokens")
		}
		seen := map[string]bool{}
		for _, t := range cl.Tokens {
			switch {
			case t.Value == "":
				at(p, t, "a token is empty")
			case seen[t.Value]:
				at(p, t, "token %q is listed twice", t.Value)
			}
			seen[t.Value] = true
		}
	default:
		at(p, cl.Mode, "clients.mode %q: want %s or %s", cl.Mode.Value, modeVerified, modeToken)
	}
}

func (c *config) validateBuckets(p *problems) {
	if len(c.Buckets) == 0 {
		p.addAt(0, "", "no buckets: list at least one under buckets")
		return
	}
	clients := c.clientNames()
	seen := map[string]bool{}
	for _, b := range c.Buckets {
		before := len(p.list)
		name := b.Name.Value
		if name == "" {
			p.addAt(b.line(), "", "a bucket needs a name")
			continue
		}
		if seen[name] {
			at(p, b.Name, "bucket %q is listed twice", name)
		}
		seen[name] = true
		// proxy.New checks the rest; here each problem gets its line.
		switch h := b.Host.Value; {
		case h == "":
			at(p, b.Name, "bucket %q: host is missing", name)
		case strings.Contains(h, "://"):
			at(p, b.Host, "bucket %q: host %q holds a scheme; give the bare host name and the scheme as scheme", name, h)
		case strings.ContainsAny(h, "/?#@ "):
			at(p, b.Host, "bucket %q: host %q is not a host name", name, h)
		}
		if b.Port.Value < 0 || b.Port.Value > 65535 {
			at(p, b.Port, "bucket %q: port %d is out of range", name, b.Port.Value)
		}
		if s := b.Scheme.Value; s != "" && s != "http" && s != "https" {
			at(p, b.Scheme, "bucket %q: scheme %q: want https (the default) or http", name, s)
		}
		hmac := b.AccessKeyID.Value != "" || b.SecretAccessKey.Value != ""
		switch {
		case b.AWSProfile.Value != "" && (hmac || b.APIKey.Value != ""):
			at(p, b.AWSProfile, "bucket %q: give one of HMAC keys, an api_key or an aws_profile, not several", name)
		case b.AWSProfile.Value != "":
			c.loadProfile(p, b)
		case hmac && b.APIKey.Value != "":
			at(p, b.APIKey, "bucket %q: give either HMAC keys or an api_key, not both", name)
		case hmac && b.AccessKeyID.Value == "":
			at(p, b.SecretAccessKey, "bucket %q: secret_access_key without access_key_id", name)
		case hmac && b.SecretAccessKey.Value == "":
			at(p, b.AccessKeyID, "bucket %q: access_key_id without secret_access_key (or it expanded to nothing)", name)
		case !hmac && b.APIKey.Value == "":
			loc := b.Name
			if b.APIKey.Line > 0 {
				loc = b.APIKey // set, but expanded to nothing
			}
			at(p, loc, "bucket %q: no credentials: give access_key_id and secret_access_key, api_key, or aws_profile", name)
		}
		for _, a := range b.Allow {
			if !clients[a.Value] {
				at(p, a, "bucket %q: allow names %q, which is not in clients.%s", name, a.Value, c.clientList())
			}
		}
		if len(p.list) == before {
			// Whatever else the library refuses (the bucket name rules, for
			// one), reported at the bucket's line.
			if err := checkBucket(b.proxyBucket(c.profiles)); err != nil {
				at(p, b.Name, "%v", err)
			}
		}
	}
}

// checkBucket asks the library whether it accepts b, by building a proxy
// that holds b alone.
func checkBucket(b proxy.Bucket) error {
	p, err := proxy.New(proxy.WithBuckets(b),
		proxy.WithAuthorizer(func(context.Context, string, string) (bool, error) { return false, nil }))
	if err != nil {
		return err
	}
	return p.Close()
}

// proxyBucket is the bucket for the library, its keys from profiles when it
// names an aws_profile.
func (b bucketConfig) proxyBucket(profiles map[string]*aws.CredentialsCache) proxy.Bucket {
	pb := proxy.Bucket{
		Name:      b.Name.Value,
		Anonymous: b.Anonymous.Value,
		Endpoint: proxy.Endpoint{
			Host:      b.Host.Value,
			Port:      b.Port.Value,
			Scheme:    b.Scheme.Value,
			Region:    b.Region.Value,
			PathStyle: b.PathStyle.Value,
		},
		Credentials: proxy.Credentials{
			AccessKeyID:       b.AccessKeyID.Value,
			SecretAccessKey:   b.SecretAccessKey.Value,
			APIKey:            b.APIKey.Value,
			ServiceInstanceID: b.ServiceInstanceID.Value,
		},
	}
	if pc := profiles[b.AWSProfile.Value]; b.AWSProfile.Value != "" && pc != nil {
		pb.Credentials.Provider = pc
	}
	return pb
}

// keyRules are the rules of the client keys that have some.
type keyRules map[string][]ruleConfig

func rulesOf(keys []clientKey) keyRules {
	r := keyRules{}
	for _, k := range keys {
		if len(k.Rules) > 0 {
			r[k.AccessKeyID.Value] = k.Rules
		}
	}
	if len(r) == 0 {
		return nil
	}
	return r
}

// decide is the request authorizer of the rules: a key without rules may do
// what its buckets allow; a key with rules only what one of them allows. The
// answer holds for the bucket when no rule of the key has a prefix, for the
// key (or listing prefix) otherwise.
func (r keyRules) decide(_ context.Context, a proxy.AccessRequest) (proxy.Decision, error) {
	rules, ok := r[a.Token]
	if !ok {
		return proxy.Decision{Allow: true, Scope: proxy.ScopeBucket}, nil
	}
	scope := proxy.ScopeBucket
	for _, rule := range rules {
		if rule.Prefix.Value != "" {
			scope = proxy.ScopeKey
		}
	}
	if scope == proxy.ScopeKey && a.Action == "s3:ListBucket" {
		scope = proxy.ScopeRequest // the prefix is not in every listing
	}
	for _, rule := range rules {
		if rule.allows(a) {
			return proxy.Decision{Allow: true, Scope: scope}, nil
		}
	}
	return proxy.Decision{Allow: false, Scope: scope}, nil
}

func (rule ruleConfig) allows(a proxy.AccessRequest) bool {
	action := false
	for _, s := range rule.Actions {
		action = action || s.Value == "s3:*" || s.Value == a.Action
	}
	if a.Bucket == "" { // ListBuckets (s3:ListAllMyBuckets): it lists only the key's buckets
		return action
	}
	bucket := len(rule.Buckets) == 0
	for _, b := range rule.Buckets {
		bucket = bucket || b.Value == a.Bucket
	}
	name := a.Key
	if a.Action == "s3:ListBucket" {
		name = a.Prefix
	}
	return action && bucket && strings.HasPrefix(name, rule.Prefix.Value)
}

func (c *config) validateProxy(p *problems) {
	if ttl := c.Cache.AuthTTL; ttl.Value <= 0 {
		at(p, ttl, "cache.auth_ttl must be positive, not %s", ttl.Value)
	}
	if n := c.Clients.MaxPresignedUses; n.Value < 0 {
		at(p, n, "clients.max_presigned_uses must not be negative, not %d", n.Value)
	} else if n.Value > 0 && c.Clients.Mode.Value == modeToken {
		at(p, n, "clients.max_presigned_uses needs verified mode: in token mode signatures are not verified, so nothing identifies a URL")
	}
	if r := c.Clients.UsesRedis; r.Value != "" {
		if _, _, err := net.SplitHostPort(r.Value); err != nil {
			at(p, r, "clients.presigned_uses_redis %q is not host:port", r.Value)
		}
	}
	for _, k := range c.Clients.Keys {
		for _, rule := range k.Rules {
			if len(rule.Actions) == 0 {
				at(p, k.AccessKeyID, "a rule of client %q names no action", k.AccessKeyID.Value)
			}
			for _, a := range rule.Actions {
				if !strings.HasPrefix(a.Value, "s3:") {
					at(p, a, "action %q is not an S3 action (s3:GetObject, s3:*, …)", a.Value)
				}
			}
		}
	}
	if n := c.Cache.AuthCapacity; n.Value <= 0 {
		at(p, n, "cache.auth_capacity must be positive, not %d", n.Value)
	}
	if e := c.IAM.Endpoint; e.Value != "" {
		if u, err := url.Parse(e.Value); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			at(p, e, "iam.endpoint %q is not an http(s) URL", e.Value)
		}
	}
	for _, d := range []setting[time.Duration]{c.IAM.Timeout, c.Upstream.ResponseHeaderTimeout} {
		if d.Value <= 0 {
			at(p, d, "the duration must be positive, not %s", d.Value)
		}
	}
	for _, d := range c.VHosts {
		if d.Value == "" || strings.ContainsAny(d.Value, "/:@ ") {
			at(p, d, "virtual host domain %q is not a host name", d.Value)
		}
	}
}

func (c *config) validateCORS(p *problems) {
	for _, r := range c.CORS {
		line := firstLine(r.MaxAgeSeconds.Line, firstOf(r.AllowedOrigins), firstOf(r.AllowedMethods),
			firstOf(r.AllowedHeaders), firstOf(r.ExposeHeaders))
		if len(r.AllowedOrigins) == 0 {
			p.addAt(line, "", "a cors rule needs allowed_origins (\"*\" for any)")
		}
		if len(r.AllowedMethods) == 0 {
			p.addAt(line, "", "a cors rule needs allowed_methods")
		}
		for _, m := range r.AllowedMethods {
			switch m.Value {
			case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodHead:
			default:
				at(p, m, "cors method %q: want GET, PUT, POST, DELETE or HEAD", m.Value)
			}
		}
		for _, list := range [][]setting[string]{r.AllowedOrigins, r.AllowedHeaders} {
			for _, o := range list {
				if strings.Count(o.Value, "*") > 1 {
					at(p, o, "%q: at most one * wildcard", o.Value)
				}
			}
		}
		if r.MaxAgeSeconds.Value < 0 {
			at(p, r.MaxAgeSeconds, "cors max_age_seconds must not be negative, not %d", r.MaxAgeSeconds.Value)
		}
	}
}

func firstOf(list []setting[string]) int {
	if len(list) == 0 {
		return 0
	}
	return list[0].Line
}

func (c *config) validateBrowser(p *problems) {
	b := c.Browser
	if b.Listen.Value == "" {
		return
	}
	switch id := b.ClientKey; {
	case c.Clients.Mode.Value != modeVerified:
		at(p, b.Listen, "the browser page presigns with the secret of a client key: it needs clients.mode %s", modeVerified)
	case id.Value == "":
		at(p, b.Listen, "the browser page needs browser.client_key, the access key id of a clients.keys entry whose secret presigns its URLs")
	case !slices.ContainsFunc(c.Clients.Keys, func(k clientKey) bool { return k.AccessKeyID.Value == id.Value }):
		at(p, id, "browser.client_key %q is not in clients.keys", id.Value)
	}
	if name := b.Bucket.Value; name != "" && !slices.ContainsFunc(c.Buckets, func(bc bucketConfig) bool { return bc.Name.Value == name }) {
		at(p, b.Bucket, "browser.bucket %q is not in buckets", name)
	}
	if u := b.ProxyURL.Value; u != "" {
		if _, err := parseProxyURL(u); err != nil {
			at(p, b.ProxyURL, "browser.proxy_url %q: %v", u, err)
		}
	}
}

// parseProxyURL parses the proxy's URL as browsers reach it: http or https,
// a host, no path, query or user.
func parseProxyURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("want an http or https URL")
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		return nil, errors.New("want scheme://host[:port] alone: the proxy is served at the root")
	}
	u.Path = ""
	return u, nil
}

// clientNames are the names allow lists may use: access key ids in verified
// mode, tokens in token mode.
func (c *config) clientNames() map[string]bool {
	m := map[string]bool{}
	for _, k := range c.Clients.Keys {
		m[k.AccessKeyID.Value] = true
	}
	for _, t := range c.Clients.Tokens {
		m[t.Value] = true
	}
	return m
}

func (c *config) clientList() string {
	if c.Clients.Mode.Value == modeToken {
		return "tokens"
	}
	return "keys"
}

// line is the first line of a bucket entry that the file set.
func (b bucketConfig) line() int {
	return firstLine(b.Name.Line, b.Host.Line, b.Port.Line, b.Scheme.Line, b.Region.Line, b.PathStyle.Line,
		b.AccessKeyID.Line, b.SecretAccessKey.Line, b.APIKey.Line, b.ServiceInstanceID.Line, b.AWSProfile.Line)
}

func firstLine(lines ...int) int {
	first := 0
	for _, l := range lines {
		if l > 0 && (first == 0 || l < first) {
			first = l
		}
	}
	return first
}

// proxyOptions turns a validated config file into the proxy's options.
func (c *config) proxyOptions() []proxy.Option {
	buckets := make([]proxy.Bucket, 0, len(c.Buckets))
	allow := map[string]map[string]bool{}
	for _, b := range c.Buckets {
		buckets = append(buckets, b.proxyBucket(c.profiles))
		if len(b.Allow) > 0 {
			who := map[string]bool{}
			for _, a := range b.Allow {
				who[a.Value] = true
			}
			allow[b.Name.Value] = who
		}
	}
	opts := []proxy.Option{
		proxy.WithBuckets(buckets...),
		proxy.WithAuthCacheTTL(c.Cache.AuthTTL.Value),
		proxy.WithAuthCacheCapacity(c.Cache.AuthCapacity.Value),
		proxy.WithIAMEndpoint(c.IAM.Endpoint.Value),
		proxy.WithIAMTimeout(c.IAM.Timeout.Value),
		proxy.WithResponseHeaderTimeout(c.Upstream.ResponseHeaderTimeout.Value),
		proxy.WithUpstreamPayloadCheck(c.Upstream.PayloadCheck.Value),
		proxy.WithSigV2(c.Clients.SigV2.Value),
	}
	if len(c.Clients.Regions) > 0 {
		regions := make([]string, len(c.Clients.Regions))
		for i, r := range c.Clients.Regions {
			regions[i] = r.Value
		}
		opts = append(opts, proxy.WithRegions(regions...))
	}
	if len(c.VHosts) > 0 {
		domains := make([]string, len(c.VHosts))
		for i, d := range c.VHosts {
			domains[i] = d.Value
		}
		opts = append(opts, proxy.WithVirtualHostDomains(domains...))
	}
	a := allowList{buckets: allow}
	if c.Clients.Mode.Value == modeToken {
		a.clients = map[string]bool{}
		for _, t := range c.Clients.Tokens {
			a.clients[t.Value] = true
		}
	} else {
		keys := make(map[string]string, len(c.Clients.Keys))
		for _, k := range c.Clients.Keys {
			keys[k.AccessKeyID.Value] = k.SecretAccessKey.Value
		}
		opts = append(opts, proxy.WithClientKeys(keys))
		if r := rulesOf(c.Clients.Keys); r != nil {
			opts = append(opts, proxy.WithRequestAuthorizer(r.decide))
		}
	}
	if n := c.Clients.MaxPresignedUses.Value; n > 0 {
		var counter proxy.UseCounter // nil: this process
		if addr := c.Clients.UsesRedis.Value; addr != "" {
			c.redis = redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
			counter = redisuse.New(c.redis, "")
		}
		opts = append(opts, proxy.WithPresignedUseLimit(n, counter))
	}
	if a.clients != nil || len(a.buckets) > 0 {
		opts = append(opts, proxy.WithAuthorizer(a.authorize))
	}
	if len(c.CORS) > 0 {
		opts = append(opts, proxy.WithCORS(c.corsRules()...))
	}
	return opts
}

// corsRules is the cors section as the proxy's CORS policy.
func (c *config) corsRules() []proxy.CORSRule {
	values := func(list []setting[string]) []string {
		out := make([]string, len(list))
		for i, s := range list {
			out[i] = s.Value
		}
		return out
	}
	rules := make([]proxy.CORSRule, len(c.CORS))
	for i, r := range c.CORS {
		rules[i] = proxy.CORSRule{
			AllowedOrigins: values(r.AllowedOrigins),
			AllowedMethods: values(r.AllowedMethods),
			AllowedHeaders: values(r.AllowedHeaders),
			ExposeHeaders:  values(r.ExposeHeaders),
			MaxAgeSeconds:  r.MaxAgeSeconds.Value,
		}
	}
	return rules
}

// allowList is the authorizer of a config file: which tokens get in at all
// (token mode; nil lets every verified client in), and which of them may use
// the buckets that have an allow list.
type allowList struct {
	clients map[string]bool
	buckets map[string]map[string]bool
}

func (a allowList) authorize(_ context.Context, token, bucket string) (bool, error) {
	if a.clients != nil && !a.clients[token] {
		return false, nil
	}
	if who, ok := a.buckets[bucket]; ok {
		return who[token], nil
	}
	return true, nil
}

// insecure lists the warnings a config deserves without being wrong.
func (c *config) insecure() []string {
	var w []string
	plain := c.cert == nil && !loopbackAddr(c.Server.Listen.Value)
	if plain && c.Clients.Mode.Value == modeToken {
		w = append(w, "token mode on a non-loopback address without TLS: tokens travel in clear and requests are not verified")
	} else if plain {
		w = append(w, "plain HTTP on a non-loopback address: data travels in clear; configure server.tls")
	}
	if u, err := url.Parse(c.IAM.Endpoint.Value); err == nil && u.Scheme == "http" && !slices.Contains([]string{"127.0.0.1", "localhost", "::1"}, u.Hostname()) {
		w = append(w, "iam.endpoint is plain http: API keys travel in clear")
	}
	if u, err := url.Parse(c.Telemetry.OTLPEndpoint.Value); err == nil && u.Scheme == "http" && !slices.Contains([]string{"127.0.0.1", "localhost", "::1"}, u.Hostname()) {
		w = append(w, "telemetry.otlp_endpoint is plain http: spans (with bucket and key names) and any headers travel in clear")
	}
	if b := c.Browser; b.Listen.Value != "" {
		if !loopbackAddr(b.Listen.Value) {
			w = append(w, fmt.Sprintf("the browser page listens on %s, not loopback: it hands URLs presigned with client key %q to whoever reaches it; put it behind your own authentication",
				b.Listen.Value, b.ClientKey.Value))
		}
		if len(c.CORS) == 0 {
			w = append(w, "the browser page is on but there is no cors section: the proxy forwards preflights to the buckets' upstreams, whose own CORS configuration must allow the page's origin")
		}
	}
	return w
}

// loopbackAddr reports whether a listen address is bound to loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// summary says in one line what a valid configuration serves, for -check.
func (c *config) summary() string {
	if c.path == "" {
		return fmt.Sprintf("configuration OK: the demo on %s", c.Server.Listen.Value)
	}
	scheme := "http"
	if c.cert != nil {
		scheme = "https"
	}
	names := make([]string, len(c.Buckets))
	for i, b := range c.Buckets {
		names[i] = b.Name.Value
	}
	return fmt.Sprintf("configuration OK: %s://%s, %d buckets (%s), clients in %s mode",
		scheme, c.Server.Listen.Value, len(names), strings.Join(names, ", "), c.Clients.Mode.Value)
}
