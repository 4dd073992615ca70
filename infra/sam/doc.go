// Package sam validates the SAM template at the repository root (template.yaml): its tests
// render the template the way CloudFormation would for a set of parameter values (expanding
// the AWS::LanguageExtensions Fn::ForEach loops, evaluating conditions and intrinsics), check
// the result against the SAM JSON schema shipped with goformation, and check the security
// and operations properties the project relies on.
package sam
