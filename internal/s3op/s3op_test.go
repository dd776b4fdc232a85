package s3op

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		method string
		level  Level
		query  string
		copy   bool
		want   Op
	}{
		{"GET", Service, "", false, Op{Name: "ListBuckets", Action: "s3:ListAllMyBuckets"}},
		{"GET", Bucket, "", false, Op{Name: "ListObjects", Action: "s3:ListBucket", Lists: true}},
		{"GET", Bucket, "list-type=2&prefix=a%2Fb+c", false, Op{Name: "ListObjectsV2", Action: "s3:ListBucket", Lists: true, Prefix: "a/b c"}},
		{"GET", Bucket, "acl&prefix=a", false, Op{Name: "GetBucketAcl", Action: "s3:GetBucketAcl", SubResource: "acl"}},
		{"GET", Bucket, "%61cl", false, Op{Name: "GetBucketAcl", Action: "s3:GetBucketAcl", SubResource: "acl"}},
		{"HEAD", Bucket, "uploads&prefix=p", false, Op{Name: "ListMultipartUploads", Action: "s3:ListBucketMultipartUploads", SubResource: "uploads", Lists: true, Prefix: "p"}},
		{"GET", Bucket, "metrics&id=x", false, Op{Name: "GetBucketMetricsConfiguration", Action: "s3:GetMetricsConfiguration", SubResource: "metrics"}},
		{"GET", Bucket, "metrics", false, Op{Name: "ListBucketMetricsConfigurations", Action: "s3:GetMetricsConfiguration", SubResource: "metrics"}},
		{"GET", Bucket, "id=x", false, Op{Name: "ListObjects", Action: "s3:ListBucket", Lists: true}},
		{"PUT", Object, "", true, Op{Name: "CopyObject", Action: "s3:PutObject"}},
		{"PUT", Object, "partNumber=1&uploadId=u", true, Op{Name: "UploadPartCopy", Action: "s3:PutObject", SubResource: "uploadId"}},
		{"GET", Object, "versionId=v&X-Amz-Signature=s&x-amz-acl=a", false, Op{Name: "GetObject", Action: "s3:GetObjectVersion", Versioned: true, Headers: []string{"x-amz-acl"}}},
		{"GET", Object, "tagging&versionId=v", false, Op{Name: "GetObjectTagging", Action: "s3:GetObjectVersionTagging", SubResource: "tagging", Versioned: true}},
		{"GET", Object, "retention&versionId=v", false, Op{Name: "GetObjectRetention", Action: "s3:GetObjectRetention", SubResource: "retention", Versioned: true}},
		{"GET", Object, "prefix=a", false, Op{Name: "GetObject", Action: "s3:GetObject"}},
		{"POST", Object, "acl", false, Op{Name: "Unknown", SubResource: "acl"}},
		{"GET", Object, "foo=1&foo=2&Bar", false, Op{Name: "GetObject", Action: "s3:GetObject", Unknown: "foo"}},
		{"GET", Object, "=1", false, Op{Name: "GetObject", Action: "s3:GetObject", Unknown: "(a parameter without a name)"}},
		{"OPTIONS", Object, "", false, Op{Name: "Unknown"}},
	} {
		got, err := Classify(c.method, c.level, c.query, c.copy)
		if err != nil {
			t.Errorf("%s %q: %v", c.method, c.query, err)
			continue
		}
		if !equalOps(got, c.want) {
			t.Errorf("%s %q:\n got  %+v\n want %+v", c.method, c.query, got, c.want)
		}
	}
}

func equalOps(a, b Op) bool {
	return a.Name == b.Name && a.Action == b.Action && a.SubResource == b.SubResource && a.Lists == b.Lists &&
		a.Prefix == b.Prefix && a.Versioned == b.Versioned && a.Unknown == b.Unknown && slices.Equal(a.Headers, b.Headers)
}

func TestClassifyRefuses(t *testing.T) {
	for _, c := range []struct {
		level     Level
		query     string
		message   string
		arg, argV string
	}{
		{Bucket, "prefix=a&prefix=b", "The query parameter prefix may be given once.", "prefix", ""},
		{Bucket, "prefix=a&pre%66ix=b", "The query parameter prefix may be given once.", "prefix", ""},
		{Bucket, "acl&acl", "The query parameter acl may be given once.", "acl", ""},
		{Bucket, "acl&policy", "Conflicting query string parameters: acl, policy", "ResourceType", "acl"},
		{Object, "uploadId=a&tagging", "Conflicting query string parameters: uploadId, tagging", "ResourceType", "uploadId"},
		{Object, "X-Amz-Acl=a&x-amz-acl=b", "The query parameter x-amz-acl may be given once.", "x-amz-acl", ""},
		{Bucket, "prefix=%zz", "The value of the query parameter prefix is not validly encoded.", "prefix", ""},
		// Past the names kept inline, a map finds duplicates.
		{Bucket, "prefix=1&delimiter=1&marker=1&max-keys=1&encoding-type=1&list-type=1&" +
			"continuation-token=1&fetch-owner=1&start-after=1&key-marker=1&version-id-marker=1&upload-id-marker=1&" +
			"max-uploads=1&max-parts=1&part-number-marker=1&partNumber=1&versionId=1&x-id=1&prefix=2",
			"The query parameter prefix may be given once.", "prefix", ""},
	} {
		_, err := Classify("GET", c.level, c.query, false)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: %v, want an *Error", c.query, err)
			continue
		}
		if e.Status != 400 || e.Code != "InvalidArgument" || e.Message != c.message || e.ArgumentName != c.arg || e.ArgumentValue != c.argV {
			t.Errorf("%q: %+v", c.query, e)
		}
	}
}

// Every sub-resource of the tables is recognised as one, at its level only.
func TestSelectorsAtTheirLevel(t *testing.T) {
	for name := range objectOps {
		if name == "" {
			continue
		}
		op, err := Classify("GET", Object, name+"=x", false)
		if err != nil || op.SubResource != name {
			t.Errorf("object %q: %+v %v", name, op, err)
		}
	}
	for name := range bucketOps {
		if name == "" {
			continue
		}
		op, err := Classify("GET", Bucket, name, false)
		if err != nil || op.SubResource != name {
			t.Errorf("bucket %q: %+v %v", name, op, err)
		}
		if _, isObject := objectOps[name]; !isObject && !params[name] {
			if op, _ := Classify("GET", Object, name, false); op.Unknown != name {
				t.Errorf("bucket sub-resource %q on an object: %+v, want it unknown", name, op)
			}
		}
	}
}

// FuzzClassify checks Classify against net/url's reading of the same query:
// what it accepts has each parameter S3 defines once, the prefix a listing
// reads is url's, and an error is always an *Error.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"", "list-type=2&prefix=a%2F", "acl&prefix=x", "prefix=a&prefix=b", "acl&policy",
		"versionId=1&x-amz-acl=p&X-Amz-Signature=s", "uploadId=1&partNumber=2", "pre%66ix=a", "prefix=a+b%2B", "=&&=x"} {
		f.Add("GET", uint8(Bucket), s)
		f.Add("PUT", uint8(Object), s)
	}
	f.Fuzz(func(t *testing.T, method string, level uint8, query string) {
		lv := Level(level % 3)
		op, err := Classify(method, lv, query, false)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 || e.Code != "InvalidArgument" {
				t.Fatalf("%q: error %v", query, err)
			}
			return
		}
		if lv == Service {
			return
		}
		counts := map[string]int{}
		var prefixes []string
		for part := range strings.SplitSeq(query, "&") {
			if part == "" {
				continue
			}
			rawName, rawValue, _ := strings.Cut(part, "=")
			name := DecodeName(rawName)
			if IsPresignParam(name) {
				continue
			}
			if strings.HasPrefix(strings.ToLower(name), amzPrefix) && len(name) > len(amzPrefix) {
				name = strings.ToLower(name)
			}
			counts[name]++
			if name == "prefix" {
				v, err := url.QueryUnescape(rawValue)
				if err != nil {
					t.Fatalf("%q: an undecodable prefix was accepted", query)
				}
				prefixes = append(prefixes, v)
			}
		}
		for name, n := range counts {
			defined := params[name] || isSelector(lv, name) || strings.HasPrefix(name, amzPrefix)
			if defined && n > 1 {
				t.Fatalf("%q: %s given %d times was accepted", query, name, n)
			}
		}
		if op.Lists && len(prefixes) == 1 && op.Prefix != prefixes[0] {
			t.Fatalf("%q: prefix %q, url reads %q", query, op.Prefix, prefixes[0])
		}
		if !op.Lists && op.Prefix != "" {
			t.Fatalf("%q: a prefix on %s", query, op.Name)
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	for _, c := range []struct{ name, query string }{
		{"none", ""},
		{"listing", "list-type=2&prefix=photos%2F2026%2F&delimiter=%2F&max-keys=1000&x-id=ListObjectsV2"},
		{"presigned", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=k%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Classify("GET", Bucket, c.query, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
