// Package sam validates the templates of the repository. Its tests run cfn-lint with the
// AWS SAM translator on every template (the full tier: `make test`), render template.yaml
// the way CloudFormation would for a set of parameter values (expanding the
// AWS::LanguageExtensions Fn::ForEach loops as CloudFormation does, evaluating conditions
// and intrinsics) to check the security and operations properties the project relies on,
// and read samconfig.toml.example with SAM CLI's grammar for parameter_overrides.
package sam
