package postform

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/osproxy/proxy/internal/s3err"
)

// Policy is a POST form's policy document, parsed: base64 JSON with an
// expiration and the conditions every field of the form must meet. Check
// checks a form against it as S3 does (the messages are S3's); Onward issues
// it again with the same conditions and another credential.
type Policy struct {
	expiration string // as the client wrote it; the upstream's policy keeps it
	expires    time.Time
	conditions []condition
}

// condition is one condition: exact ({"field": "value"} or ["eq",
// "$field", "value"]), starts-with, or content-length-range.
type condition struct {
	op         string // "eq", "starts-with" or "content-length-range"
	field      string // lower case, without the '$'; "" for content-length-range
	value      string
	min, max   int64
	raw        json.RawMessage // as the client wrote it, for the messages and the upstream's policy
	authorizes bool            // a condition on an authentication field, which the upstream's policy replaces
}

func invalidPolicy(format string, args ...any) *s3err.Error {
	return s3err.InvalidPolicyDocument.WithMessage("Invalid Policy: " + fmt.Sprintf(format, args...))
}

func policyDenied(format string, args ...any) *s3err.Error {
	return s3err.AccessDenied.WithMessage("Invalid according to Policy: " + fmt.Sprintf(format, args...))
}

// IsAuthField reports whether a field (lower case) carries a form's
// signature: a form posted on carries its own (Reframe), and conditions on
// them are the client's credential's, checked by Check, not issued again by
// Onward.
func IsAuthField(lower string) bool { return authFields[lower] }

var authFields = map[string]bool{
	"x-amz-algorithm": true, "x-amz-credential": true, "x-amz-date": true,
	"x-amz-security-token": true, "x-amz-signature": true, "policy": true,
	"awsaccesskeyid": true, "signature": true,
}

// ParsePolicy decodes and parses a policy and checks its expiration against
// now.
func ParsePolicy(encoded string, now time.Time) (*Policy, error) {
	encoded = strings.TrimSpace(encoded)
	if encoded == "" {
		return nil, invalidPolicy("Expecting '{' but found End-of-Input")
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(encoded); err != nil {
			return nil, invalidPolicy("invalid Base64 encoding.")
		}
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil || doc == nil {
		return nil, invalidPolicy("Invalid JSON.")
	}
	for name := range doc {
		if name != "expiration" && name != "conditions" {
			return nil, invalidPolicy("Unexpected: %q", s3err.Clip(name))
		}
	}
	exp, ok := doc["expiration"]
	if !ok {
		return nil, invalidPolicy("Policy missing expiration.")
	}
	conds, ok := doc["conditions"]
	if !ok {
		return nil, invalidPolicy("Policy missing conditions.")
	}
	p := &Policy{}
	if err := json.Unmarshal(exp, &p.expiration); err != nil {
		return nil, invalidPolicy("Invalid JSON.")
	}
	if p.expires, err = time.Parse(time.RFC3339Nano, p.expiration); err != nil {
		return nil, invalidPolicy("Invalid 'expiration' value: '%s'", s3err.Clip(p.expiration))
	}
	var list []json.RawMessage
	if err := json.Unmarshal(conds, &list); err != nil {
		return nil, invalidPolicy("Invalid 'conditions' value: must be a List.")
	}
	for _, c := range list {
		cond, err := parseCondition(c)
		if err != nil {
			return nil, err
		}
		p.conditions = append(p.conditions, cond)
	}
	if !now.Before(p.expires) {
		return nil, policyDenied("Policy expired.")
	}
	return p, nil
}

// parseCondition parses one condition of a policy.
func parseCondition(raw json.RawMessage) (condition, error) {
	c := condition{raw: raw}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return c, invalidPolicy("Invalid JSON.")
		}
		if len(obj) != 1 {
			return c, invalidPolicy("Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.")
		}
		for name, v := range obj {
			if err := json.Unmarshal(v, &c.value); err != nil {
				return c, invalidPolicy("Invalid Simple-Condition: value must be a string.")
			}
			c.op, c.field = "eq", strings.ToLower(strings.TrimPrefix(name, "$"))
		}
		c.authorizes = authFields[c.field]
		return c, nil
	}
	var arr []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &arr) != nil {
		return c, invalidPolicy("Invalid condition test: must be a List or Object.")
	}
	if len(arr) == 0 {
		return c, invalidPolicy("Invalid Condition: missing operation identifier.")
	}
	if err := json.Unmarshal(arr[0], &c.op); err != nil {
		return c, invalidPolicy("Invalid JSON.")
	}
	c.op = strings.ToLower(c.op)
	switch c.op {
	case "eq", "starts-with":
		if len(arr) != 3 {
			return c, invalidPolicy("Invalid %s: wrong number of arguments.", c.op)
		}
		var ref string
		if err := json.Unmarshal(arr[1], &ref); err != nil {
			return c, invalidPolicy("Invalid JSON.")
		}
		v, ok := jsonScalar(arr[2])
		if !ok {
			return c, invalidPolicy("Invalid JSON.")
		}
		if len(ref) < 2 || ref[0] != '$' {
			return c, policyDenied("Policy Condition failed: %s", s3err.Clip(string(c.raw)))
		}
		c.field, c.value = strings.ToLower(ref[1:]), v
		c.authorizes = authFields[c.field]
	case "content-length-range":
		if len(arr) != 3 {
			return c, invalidPolicy("Invalid %s: wrong number of arguments.", c.op)
		}
		var ok1, ok2 bool
		c.min, ok1 = jsonInt(arr[1])
		c.max, ok2 = jsonInt(arr[2])
		if !ok1 || !ok2 {
			return c, invalidPolicy("Invalid JSON.")
		}
	default:
		return c, invalidPolicy("Invalid Condition: unknown operation '%s'.", s3err.Clip(c.op))
	}
	return c, nil
}

// jsonScalar is a string or number of a condition as text.
func jsonScalar(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
}

// jsonInt is an integer of content-length-range, written as a number or a
// string.
func jsonInt(raw json.RawMessage) (int64, bool) {
	s, ok := jsonScalar(raw)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// Check checks a form against the policy: every field but the signature,
// the policy, the file and x-ignore-* ones has a condition, every condition
// holds (bucket is the bucket the form was posted to), a bucket condition is
// among them, and the file's length is in the content-length-range.
func (p *Policy) Check(f *Form, bucket string, length int64) error {
	signing, _ := f.Signing()
	for _, fd := range f.Fields {
		if exemptField(fd.Lower) || signing == SigV2 && (fd.Lower == "awsaccesskeyid" || fd.Lower == "signature") {
			continue
		}
		if !p.covers(fd.Lower) {
			return policyDenied("Extra input fields: %s", s3err.Clip(fd.Lower))
		}
	}
	hasBucket := false
	for _, c := range p.conditions {
		if c.op == "content-length-range" {
			if err := c.lengthError(length); err != nil {
				return err
			}
			continue
		}
		got, ok := f.Value(c.field)
		if c.field == "bucket" {
			got, ok, hasBucket = bucket, true, true
		}
		if !ok || !c.holds(got) {
			return policyDenied("Policy Condition failed: %s", s3err.Clip(string(c.raw)))
		}
	}
	if !hasBucket {
		return policyDenied("Extra input fields: bucket")
	}
	return nil
}

// LengthError checks a file's length against the policy's
// content-length-range conditions: S3's EntityTooLarge or EntityTooSmall, or
// nil.
func (p *Policy) LengthError(length int64) error {
	for _, c := range p.conditions {
		if c.op != "content-length-range" {
			continue
		}
		if err := c.lengthError(length); err != nil {
			return err
		}
	}
	return nil
}

// lengthError checks a file's length against a content-length-range
// condition.
func (c condition) lengthError(length int64) error {
	switch {
	case length > c.max:
		return s3err.EntityTooLarge.WithField("ProposedSize", strconv.FormatInt(length, 10)).WithField("MaxSizeAllowed", strconv.FormatInt(c.max, 10))
	case length < c.min:
		return s3err.EntityTooSmall.WithField("ProposedSize", strconv.FormatInt(length, 10)).WithField("MinSizeAllowed", strconv.FormatInt(c.min, 10))
	}
	return nil
}

// exemptField reports whether a field needs no condition.
func exemptField(lower string) bool {
	return lower == "file" || lower == "policy" || lower == "x-amz-signature" || strings.HasPrefix(lower, "x-ignore-")
}

// covers reports whether a condition names the field.
func (p *Policy) covers(lower string) bool {
	for _, c := range p.conditions {
		if c.field == lower {
			return true
		}
	}
	return false
}

// holds reports whether a field's value meets the condition. A starts-with on
// Content-Type holds for a list of types when each one starts so, as S3 has it.
func (c *condition) holds(v string) bool {
	if c.op == "eq" {
		return v == c.value
	}
	if c.field == "content-type" && strings.Contains(v, ",") {
		for part := range strings.SplitSeq(v, ",") {
			if !strings.HasPrefix(strings.TrimSpace(part), c.value) {
				return false
			}
		}
		return true
	}
	return strings.HasPrefix(v, c.value)
}

// Onward returns the policy of a form posted on, base64: the client's
// expiration and conditions, but those on the client's authentication fields,
// and exact conditions on the new ones (auth, in their order). A key other
// than the form's ("": none), the form's with ${filename} put in, replaces the
// conditions on the key with an exact one.
func (p *Policy) Onward(auth [][2]string, key string) (string, error) {
	doc := struct {
		Expiration string            `json:"expiration"`
		Conditions []json.RawMessage `json:"conditions"`
	}{Expiration: p.expiration}
	for _, c := range p.conditions {
		if !c.authorizes && !(key != "" && c.field == "key") {
			doc.Conditions = append(doc.Conditions, c.raw)
		}
	}
	if key != "" { // the key with ${filename} put in: the proxy checked the client's conditions on it
		auth = append(auth[:len(auth):len(auth)], [2]string{"key", key})
	}
	for _, kv := range auth {
		b, err := json.Marshal(map[string]string{kv[0]: kv[1]})
		if err != nil {
			return "", err
		}
		doc.Conditions = append(doc.Conditions, b)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
