package conformance

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// boto3 runs through testdata/boto3_ops.py, a lineDriver.
func boto3Client(id, python, version string) *clientSpec {
	return &clientSpec{id: id, name: "boto3 " + version, open: func(_ *testing.T, tg target, work string) (ops, error) {
		return startBoto3(python, tg, work)
	}}
}

// boto3SigV2Client is boto3 signing every request and presigned URL with
// AWS Signature Version 2 (signature_version "s3").
func boto3SigV2Client(python, version string) *clientSpec {
	return &clientSpec{id: "boto3-sigv2", name: "boto3 " + version + " (SigV2)", open: func(_ *testing.T, tg target, work string) (ops, error) {
		return startBoto3(python, tg, work, "OSP_SIGNATURE_VERSION=s3")
	}}
}

// scriptDir is this package's directory, where testdata lives.
func scriptDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

func startBoto3(python string, tg target, work string, env ...string) (*lineDriver, error) {
	cmd := exec.Command(python, "-u", filepath.Join(scriptDir(), "testdata", "boto3_ops.py"))
	cmd.Dir = work
	cmd.Env = clientEnv("OSP_ENDPOINT="+tg.url, "AWS_ACCESS_KEY_ID="+tg.key, "AWS_SECRET_ACCESS_KEY="+tg.secret,
		"AWS_DEFAULT_REGION="+region, "AWS_CONFIG_FILE="+filepath.Join(work, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(work, "no-credentials"))
	cmd.Env = append(cmd.Env, env...)
	return startLineDriver("boto3", cmd)
}
