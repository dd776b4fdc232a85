package proxy

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/osproxy/proxy/internal/sigv4"
)

// Browsers. A cross-origin request starts with a preflight: OPTIONS with
// Origin and Access-Control-Request-Method, and no credentials. S3 answers it
// from the bucket's CORS configuration. The proxy answers it for the buckets it
// routes, and only those: from its own rules (WithCORS), or by forwarding it
// to the upstream WITHOUT the bucket's credentials (it carries none and needs
// none) and relaying the upstream's answer.

// CORSRule is one rule of a proxy-level CORS policy (WithCORS), as in S3's
// bucket CORS configuration.
type CORSRule struct {
	// AllowedOrigins are the origins allowed, e.g. "https://app.example.com";
	// each may hold one "*" wildcard ("https://*.example.com", "*").
	AllowedOrigins []string
	// AllowedMethods are the methods allowed: GET, PUT, POST, DELETE, HEAD.
	AllowedMethods []string
	// AllowedHeaders are the request headers a preflight may ask for, each
	// with at most one "*" wildcard; matched without regard to case.
	AllowedHeaders []string
	// ExposeHeaders are the response headers a page may read
	// (Access-Control-Expose-Headers), e.g. "ETag", "x-amz-request-id".
	ExposeHeaders []string
	// MaxAgeSeconds is how long a browser may cache the preflight's answer;
	// 0 sends no Access-Control-Max-Age.
	MaxAgeSeconds int
}

// Errors of preflights, in S3's words.
var (
	errCORSOrigin    = s3Error(http.StatusBadRequest, "BadRequest", "Insufficient information. Origin request header needed.")
	errCORSMethod    = s3Error(http.StatusBadRequest, "BadRequest", "Invalid Access-Control-Request-Method.")
	errCORSForbidden = s3Error(http.StatusForbidden, "AccessForbidden", "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.")
)

// resolveUnsigned resolves the bucket of a request that carries no
// credentials, which anyone may send: from the cache, or by the hooks within
// the slots of unsignedGate, so that such requests for made-up buckets cannot
// take the hook's slots from signed clients (503 SlowDown past them).
func (p *Proxy) resolveUnsigned(ctx context.Context, bucket string) (*target, error) {
	if t, ok := p.resolver.cached(bucket); ok {
		return t, nil
	}
	if p.resolver.hooks == nil {
		return nil, errNoSuchBucket
	}
	if !p.unsignedGate.enter() {
		return nil, p.unsignedGate.busy("bucket (unsigned requests)")
	}
	defer p.unsignedGate.leave()
	return p.resolver.resolve(ctx, bucket)
}

// preflight answers a CORS preflight for a routed bucket: from the proxy's
// rules, or from the upstream, asked without credentials.
func (p *Proxy) preflight(x *exchange) error {
	r := x.in
	origin, method := r.Header.Get("Origin"), r.Header.Get("Access-Control-Request-Method")
	if origin == "" {
		return errCORSOrigin
	}
	if !isCORSMethod(method) {
		return errCORSMethod.withMessage("Invalid Access-Control-Request-Method: " + strconv.Quote(clip(method)))
	}
	if x.req.bucket == "" {
		return errMethodNotAllowed
	}
	t, err := p.resolveUnsigned(r.Context(), x.req.bucket)
	if err != nil {
		return err
	}
	if p.cfg.cors == nil {
		x.target, x.who = t, identity{anonymous: true, payloadHash: sigv4.UnsignedPayload}
		if x.out, err = p.buildUpstream(r, x.req, &x.who, &x.body, t); err != nil {
			return err
		}
		p.forward(x)
		return nil
	}
	requested := splitHeaderList(r.Header.Get("Access-Control-Request-Headers"))
	rule := p.corsRule(origin, method, requested)
	if rule == nil {
		return errCORSForbidden
	}
	h := x.w.Header()
	allowOrigin(h, rule, origin)
	h.Set("Access-Control-Allow-Methods", strings.Join(rule.AllowedMethods, ", "))
	if len(requested) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(requested, ", "))
	}
	if rule.MaxAgeSeconds > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(rule.MaxAgeSeconds))
	}
	h.Set("Content-Length", "0")
	h.Set("X-Amz-Request-Id", x.id)
	x.w.WriteHeader(http.StatusOK)
	return nil
}

// corsHeaders adds to a cross-origin request's answer, whatever it turns out
// to be (an upstream's, or the proxy's own error), the Access-Control-*
// headers of the proxy's rule for it, so that a page can read the answer.
// Without WithCORS the upstream's own headers pass through.
func (p *Proxy) corsHeaders(x *exchange) {
	if p.cfg.cors == nil {
		return
	}
	origin := x.in.Header.Get("Origin")
	if origin == "" {
		return
	}
	h := x.w.Header()
	varyOrigin(h)
	rule := p.corsRule(origin, x.in.Method, nil)
	if rule == nil {
		return
	}
	allowOrigin(h, rule, origin)
	if len(rule.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(rule.ExposeHeaders, ", "))
	}
}

// allowOrigin sets Access-Control-Allow-Origin: "*" for a rule that allows
// any origin, as S3 answers, the request's origin otherwise.
func allowOrigin(h http.Header, rule *CORSRule, origin string) {
	if slices.Contains(rule.AllowedOrigins, "*") {
		h.Set("Access-Control-Allow-Origin", "*")
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	varyOrigin(h)
}

// varyOrigin says the answer depends on the Origin, once.
func varyOrigin(h http.Header) {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "Origin") {
				return
			}
		}
	}
	h.Add("Vary", "Origin")
}

// corsRule returns the first rule that allows origin, method and every
// requested header, or nil.
func (p *Proxy) corsRule(origin, method string, requested []string) *CORSRule {
	for i := range p.cfg.cors {
		rule := &p.cfg.cors[i]
		if !slices.ContainsFunc(rule.AllowedOrigins, func(o string) bool { return wildcardMatch(o, origin, false) }) ||
			!slices.Contains(rule.AllowedMethods, method) {
			continue
		}
		allowed := true
		for _, h := range requested {
			if !slices.ContainsFunc(rule.AllowedHeaders, func(a string) bool { return wildcardMatch(a, h, true) }) {
				allowed = false
				break
			}
		}
		if allowed {
			return rule
		}
	}
	return nil
}

// wildcardMatch reports whether s matches pattern, whose one "*" (if any)
// stands for any run of characters.
func wildcardMatch(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	before, after, wild := strings.Cut(pattern, "*")
	if !wild {
		return pattern == s
	}
	return len(s) >= len(before)+len(after) && strings.HasPrefix(s, before) && strings.HasSuffix(s, after)
}

// isCORSMethod reports whether m is a method a CORS rule can allow.
func isCORSMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodHead:
		return true
	}
	return false
}

// splitHeaderList splits a comma-separated header list, trimmed, empty
// entries dropped, at most maxFields of them.
func splitHeaderList(v string) []string {
	var out []string
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" && len(out) < maxFields {
			out = append(out, strings.ToLower(part))
		}
	}
	return out
}

// validateCORS checks a proxy-level CORS policy.
func validateCORS(rules []CORSRule) error {
	for i, r := range rules {
		if len(r.AllowedOrigins) == 0 || len(r.AllowedMethods) == 0 {
			return fmt.Errorf("CORS rule %d: needs allowed origins and methods", i)
		}
		for _, m := range r.AllowedMethods {
			if !isCORSMethod(m) {
				return fmt.Errorf("CORS rule %d: method %q is not GET, PUT, POST, DELETE or HEAD", i, m)
			}
		}
		for _, o := range append(append([]string(nil), r.AllowedOrigins...), r.AllowedHeaders...) {
			if strings.Count(o, "*") > 1 {
				return fmt.Errorf("CORS rule %d: %q has more than one wildcard", i, o)
			}
		}
		if r.MaxAgeSeconds < 0 {
			return fmt.Errorf("CORS rule %d: negative MaxAgeSeconds", i)
		}
	}
	return nil
}
