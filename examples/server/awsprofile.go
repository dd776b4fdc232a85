package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// awsConfig is where the buckets' aws_profile are read: the AWS shared
// config and credentials files, by default those the AWS SDKs read
// ($AWS_CONFIG_FILE or ~/.aws/config, $AWS_SHARED_CREDENTIALS_FILE or
// ~/.aws/credentials).
type awsConfig struct {
	ConfigFile      setting[string] `yaml:"config_file"`
	CredentialsFile setting[string] `yaml:"credentials_file"`
}

// profileLoadTimeout bounds the reading of a profile (its files; no
// credentials are fetched then).
const profileLoadTimeout = 10 * time.Second

// loadProfile loads the AWS shared config profile a bucket names, once per
// profile, with aws-sdk-go-v2's config package: whatever the profile says
// (static keys, credential_process, role_arn with source_profile or
// credential_source, web_identity_token_file, sso_session…). Nothing is
// retrieved until the proxy first needs keys. A profile without a region
// gets the bucket's for the calls its credentials need (STS).
func (c *config) loadProfile(p *problems, b bucketConfig) {
	name := b.AWSProfile.Value
	if _, ok := c.profiles[name]; ok {
		return
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithSharedConfigProfile(name)}
	for _, f := range []struct {
		s   setting[string]
		opt func([]string) awsconfig.LoadOptionsFunc
	}{{c.AWS.ConfigFile, awsconfig.WithSharedConfigFiles}, {c.AWS.CredentialsFile, awsconfig.WithSharedCredentialsFiles}} {
		if f.s.Value == "" {
			continue
		}
		if _, err := os.Stat(f.s.Value); err != nil {
			at(p, f.s, "%v", err)
			return
		}
		opts = append(opts, f.opt([]string{f.s.Value}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), profileLoadTimeout)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err == nil && cfg.Region == "" {
		region := b.Region.Value
		if region == "" {
			region = "us-east-1"
		}
		cfg, err = awsconfig.LoadDefaultConfig(ctx, append(opts, awsconfig.WithRegion(region))...)
	}
	var missing awsconfig.SharedConfigProfileNotExistError
	switch {
	case errors.As(err, &missing):
		at(p, b.AWSProfile, "bucket %q: aws_profile %q is in none of the AWS config files (%v)", b.Name.Value, name, missing.Filename)
		return
	case err != nil:
		at(p, b.AWSProfile, "bucket %q: aws_profile %q: %v", b.Name.Value, name, err)
		return
	}
	cache, ok := cfg.Credentials.(*aws.CredentialsCache)
	if !ok {
		at(p, b.AWSProfile, "bucket %q: aws_profile %q: the AWS SDK gave credentials of type %T", b.Name.Value, name, cfg.Credentials)
		return
	}
	if c.profiles == nil {
		c.profiles = map[string]*aws.CredentialsCache{}
	}
	c.profiles[name] = cache
}
