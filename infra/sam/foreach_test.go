package sam

import (
	"strings"
	"testing"
)

// loopTemplate subscribes two log groups the way template.yaml does; fragment is the body
// of the loop's subscription filter resource.
func loopTemplate(fragment string) string {
	return `
Transform: AWS::LanguageExtensions
Parameters:
  LogGroupNames:
    Type: CommaDelimitedList
    Default: /aws/eks/prod/cluster,/aws/eks/dev-1/cluster
Resources:
  Function:
    Type: AWS::Lambda::Function
  Fn::ForEach::Subscriptions:
    - LogGroupName
    - !Ref LogGroupNames
    - LogsPermission&{LogGroupName}:
        Type: AWS::Lambda::Permission
        Properties:
          SourceArn: !Sub "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${LogGroupName}:*"
      Subscription&{LogGroupName}:
        Type: AWS::Logs::SubscriptionFilter
` + fragment
}

// TestForEachSubstitutesLikeCloudFormation: the loop identifier is replaced in keys, in
// Fn::Sub strings and in Ref, and nowhere else.
func TestForEachSubstitutesLikeCloudFormation(t *testing.T) {
	tmpl, err := parseTemplate([]byte(loopTemplate(`
        Properties:
          LogGroupName: !Ref LogGroupName
          FilterName: !Sub "${LogsPermission&{LogGroupName}.Id}"
          FilterPattern: "${LogGroupName} &{LogGroupName}"
`)))
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := render(tmpl, nil)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	for _, c := range []struct{ id, group string }{
		{"awseksprodcluster", "/aws/eks/prod/cluster"},
		{"awseksdev1cluster", "/aws/eks/dev-1/cluster"},
	} {
		perm := props(resource(rendered, "LogsPermission"+c.id))
		if want := "arn:aws:logs:eu-west-1:123456789012:log-group:" + c.group + ":*"; perm["SourceArn"] != want {
			t.Errorf("permission %s: SourceArn %v, want %s", c.id, perm["SourceArn"], want)
		}
		sub := props(resource(rendered, "Subscription"+c.id))
		if sub["LogGroupName"] != c.group {
			t.Errorf("subscription %s: LogGroupName %v, want %s (Ref of the identifier)", c.id, sub["LogGroupName"], c.group)
		}
		if want := getAttPlaceholder("LogsPermission"+c.id, "Id"); sub["FilterName"] != want {
			t.Errorf("subscription %s: FilterName %v, want %s (placeholder in Fn::Sub)", c.id, sub["FilterName"], want)
		}
		// A plain string is not a place CloudFormation substitutes in.
		if want := "${LogGroupName} &{LogGroupName}"; sub["FilterPattern"] != want {
			t.Errorf("subscription %s: FilterPattern %v, want it unchanged: %s", c.id, sub["FilterPattern"], want)
		}
	}
	if n := len(rendered["Resources"].(map[string]any)); n != 5 {
		t.Errorf("%d resources, want 5", n)
	}
}

// TestForEachRefusesPlaceholderInDependsOn is cfn-lint's E3005: DependsOn is a plain
// string, so &{LogGroupName} stays in it and names no resource. CloudFormation refuses such
// a template ("Unresolved resource dependencies"); render must too.
func TestForEachRefusesPlaceholderInDependsOn(t *testing.T) {
	tmpl, err := parseTemplate([]byte(loopTemplate(`
        DependsOn: LogsPermission&{LogGroupName}
        Properties:
          LogGroupName: !Ref LogGroupName
`)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = render(tmpl, nil)
	if err == nil || !strings.Contains(err.Error(), "unresolved resource dependencies [LogsPermission&{LogGroupName}") {
		t.Fatalf("render error = %v, want unresolved resource dependencies on LogsPermission&{LogGroupName}", err)
	}
}

func TestForEachRefusesBadLoops(t *testing.T) {
	for name, fragment := range map[string]string{
		"key without the identifier": `
  Fn::ForEach::Bad:
    - Name
    - [a, b]
    - Topic:
        Type: AWS::SNS::Topic
`,
		"two items giving one logical id": `
  Fn::ForEach::Bad:
    - Name
    - [a-b, ab]
    - Topic&{Name}:
        Type: AWS::SNS::Topic
`,
		"identifier that is a parameter": `
  Fn::ForEach::Bad:
    - LogGroupNames
    - [a]
    - Topic${LogGroupNames}:
        Type: AWS::SNS::Topic
`,
	} {
		t.Run(name, func(t *testing.T) {
			tmpl, err := parseTemplate([]byte(loopTemplate(`
        Properties:
          LogGroupName: !Ref LogGroupName
`) + fragment))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := render(tmpl, nil); err == nil {
				t.Error("rendered without error")
			}
		})
	}
}
