package sam

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/awslabs/goformation/v7/intrinsics"
)

// Placeholders stand for values CloudFormation only knows at deploy time. They keep the
// name of what they point to, so checks can assert which resource a policy targets.
func refPlaceholder(logicalID string) string          { return "{{Ref " + logicalID + "}}" }
func getAttPlaceholder(logicalID, attr string) string { return "{{" + logicalID + "." + attr + "}}" }

// pseudo holds fixed values for the pseudo parameters.
var pseudo = map[string]any{
	"AWS::AccountId": "123456789012",
	"AWS::Partition": "aws",
	"AWS::Region":    "eu-west-1",
	"AWS::StackName": "detector",
	"AWS::URLSuffix": "amazonaws.com",
}

// noValue marks a value removed by Ref AWS::NoValue.
type noValue struct{}

// loadTemplate reads a YAML template into generic JSON values, with short-form tags
// (!Ref, !Sub, ...) turned into their long form by goformation.
func loadTemplate(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	return parseTemplate(data)
}

// parseTemplate is loadTemplate on the template's text.
func parseTemplate(data []byte) (map[string]any, error) {
	long, err := intrinsics.ProcessYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return nil, fmt.Errorf("parse template YAML: %w", err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(long, &tmpl); err != nil {
		return nil, fmt.Errorf("decode template JSON: %w", err)
	}
	return tmpl, nil
}

// renderer turns a template into what CloudFormation would deploy for given parameters.
type renderer struct {
	params     map[string]any  // parameter values: string, or []any for CommaDelimitedList
	numbers    map[string]bool // parameters of type Number, whose Ref yields a number
	conditions map[string]bool // evaluated conditions
	resources  map[string]bool // logical ids, to tell resources from parameters in Ref
}

// render returns a deep copy of tmpl as deployed with the given parameter overrides: loops
// expanded, conditional resources dropped, intrinsics resolved, and the transforms replaced
// by the one the SAM schema knows (AWS::LanguageExtensions has done its work by then).
func render(tmpl map[string]any, overrides map[string]string) (map[string]any, error) {
	t := deepCopy(tmpl).(map[string]any)
	r := &renderer{params: map[string]any{}, numbers: map[string]bool{}, conditions: map[string]bool{}, resources: map[string]bool{}}
	params, _ := t["Parameters"].(map[string]any)
	for name := range overrides {
		if _, ok := params[name]; !ok {
			return nil, fmt.Errorf("override for unknown parameter %s", name)
		}
	}
	for name, p := range params {
		def := p.(map[string]any)
		v, ok := overrides[name]
		if !ok {
			d, has := def["Default"]
			if !has {
				return nil, fmt.Errorf("parameter %s has no default and no value", name)
			}
			v = scalarString(d)
		}
		if err := checkParameterValue(def, v); err != nil {
			return nil, fmt.Errorf("parameter %s: %w", name, err)
		}
		if def["Type"] == "Number" {
			r.numbers[name] = true
		}
		if def["Type"] == "CommaDelimitedList" {
			var list []any
			for _, s := range strings.Split(v, ",") {
				list = append(list, strings.TrimSpace(s))
			}
			r.params[name] = list
		} else {
			r.params[name] = v
		}
	}

	if err := r.checkRules(t["Rules"]); err != nil {
		return nil, err
	}
	// Rules are checked before the change set; the deployed template has no use for them
	// (and the SAM schema does not know the section).
	delete(t, "Rules")

	// AWS::LanguageExtensions runs before anything else: loops first.
	for _, section := range []string{"Conditions", "Resources", "Outputs"} {
		if v, ok := t[section]; ok {
			expanded, err := r.expandLoops(v, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", section, err)
			}
			t[section] = expanded
		}
	}
	resources := t["Resources"].(map[string]any)
	for id := range resources {
		r.resources[id] = true
	}
	if err := checkDependsOn(resources); err != nil {
		return nil, err
	}

	conds, _ := t["Conditions"].(map[string]any)
	for name := range conds {
		if _, err := r.condition(name, conds, nil); err != nil {
			return nil, err
		}
	}
	for _, section := range []string{"Resources", "Outputs"} {
		m, _ := t[section].(map[string]any)
		for id, v := range m {
			c, ok := v.(map[string]any)["Condition"].(string)
			if !ok {
				continue
			}
			val, known := r.conditions[c]
			if !known {
				return nil, fmt.Errorf("%s %s: unknown condition %s", section, id, c)
			}
			if !val {
				delete(m, id)
			}
		}
	}

	for _, section := range []string{"Resources", "Outputs"} {
		v, err := r.resolve(t[section])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", section, err)
		}
		t[section] = v
	}
	t["Transform"] = "AWS::Serverless-2016-10-31"
	return t, nil
}

// checkParameterValue applies a parameter's constraints to a value as CloudFormation does
// before anything is deployed: AllowedValues, AllowedPattern (matched against the whole
// value), MinLength/MaxLength for strings, and a number within MinValue/MaxValue for
// Number parameters (a CommaDelimitedList is checked item by item).
func checkParameterValue(def map[string]any, v string) error {
	values := []string{v}
	if def["Type"] == "CommaDelimitedList" {
		values = strings.Split(v, ",")
	}
	for _, v := range values {
		if def["Type"] == "CommaDelimitedList" {
			v = strings.TrimSpace(v)
		}
		if allowed, ok := def["AllowedValues"].([]any); ok && !containsString(allowed, v) {
			return fmt.Errorf("%q not in AllowedValues %v", v, allowed)
		}
		if pat, ok := def["AllowedPattern"].(string); ok {
			re, err := regexp.Compile("^(?:" + pat + ")$")
			if err != nil {
				return fmt.Errorf("AllowedPattern: %w", err)
			}
			if !re.MatchString(v) {
				return fmt.Errorf("%q does not match AllowedPattern %s", v, pat)
			}
		}
		if n, ok := number(def["MinLength"]); ok && float64(len(v)) < n {
			return fmt.Errorf("%q is shorter than MinLength %v", v, n)
		}
		if n, ok := number(def["MaxLength"]); ok && float64(len(v)) > n {
			return fmt.Errorf("%q is longer than MaxLength %v", v, n)
		}
		if def["Type"] == "Number" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number", v)
			}
			if n, ok := number(def["MinValue"]); ok && f < n {
				return fmt.Errorf("%v is below MinValue %v", f, n)
			}
			if n, ok := number(def["MaxValue"]); ok && f > n {
				return fmt.Errorf("%v is above MaxValue %v", f, n)
			}
		}
	}
	return nil
}

// number reads a constraint written as a YAML number or a string.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// expandLoops expands every Fn::ForEach::<name> entry in v the way the AWS::LanguageExtensions
// transform does: one copy of the fragment per collection item, with the loop identifier
// substituted as ${Id} (the item) or &{Id} (the item without its non-alphanumeric characters)
// in keys and in Fn::Sub strings only, and Ref Id replaced by the item. A placeholder in any
// other string stays as written: CloudFormation then refuses the template (for example
// "Unresolved resource dependencies" for a DependsOn), and so does render. bindings holds
// the identifiers of the enclosing loops.
func (r *renderer) expandLoops(v any, bindings map[string]string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			if ref, ok := x["Ref"].(string); ok {
				if item, bound := bindings[ref]; bound {
					return item, nil
				}
			}
			if sub, ok := x["Fn::Sub"]; ok {
				return r.expandSub(sub, bindings)
			}
		}
		out := map[string]any{}
		for key, e := range x {
			if strings.HasPrefix(key, "Fn::ForEach::") {
				if err := r.expandLoop(key, e, bindings, out); err != nil {
					return nil, err
				}
				continue
			}
			ev, err := r.expandLoops(e, bindings)
			if err != nil {
				return nil, err
			}
			if err := put(out, substituteLoop(key, bindings), ev); err != nil {
				return nil, err
			}
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			ev, err := r.expandLoops(e, bindings)
			if err != nil {
				return nil, err
			}
			out[i] = ev
		}
		return out, nil
	}
	return v, nil
}

// expandLoop adds to out the entries produced by one Fn::ForEach.
func (r *renderer) expandLoop(key string, loop any, bindings map[string]string, out map[string]any) error {
	args, ok := loop.([]any)
	if !ok || len(args) != 3 {
		return fmt.Errorf("%s: want [identifier, collection, fragment]", key)
	}
	id, ok := args[0].(string)
	if !ok || id == "" {
		return fmt.Errorf("%s: identifier must be a string", key)
	}
	if _, isParam := r.params[id]; isParam {
		return fmt.Errorf("%s: identifier %s is also a parameter name", key, id)
	}
	collection, err := r.expandLoops(args[1], bindings)
	if err != nil {
		return err
	}
	coll, err := r.resolve(collection)
	if err != nil {
		return fmt.Errorf("%s collection: %w", key, err)
	}
	items, ok := coll.([]any)
	if !ok {
		return fmt.Errorf("%s: collection is %T, not a list", key, coll)
	}
	frag, ok := args[2].(map[string]any)
	if !ok {
		return fmt.Errorf("%s: fragment is %T, not a map", key, args[2])
	}
	for outKey := range frag {
		if !strings.HasPrefix(outKey, "Fn::ForEach::") && !strings.Contains(outKey, "${"+id+"}") && !strings.Contains(outKey, "&{"+id+"}") {
			return fmt.Errorf("%s: output key %s does not use the identifier", key, outKey)
		}
	}
	for _, it := range items {
		item, ok := it.(string)
		if !ok {
			item = scalarString(it)
		}
		inner := make(map[string]string, len(bindings)+1)
		for k, v := range bindings {
			inner[k] = v
		}
		inner[id] = item
		expanded, err := r.expandLoops(frag, inner)
		if err != nil {
			return err
		}
		for k, v := range expanded.(map[string]any) {
			if err := put(out, k, v); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	return nil
}

// expandSub substitutes the loop identifiers in the string of a Fn::Sub, in either form.
func (r *renderer) expandSub(sub any, bindings map[string]string) (any, error) {
	switch s := sub.(type) {
	case string:
		return map[string]any{"Fn::Sub": substituteLoop(s, bindings)}, nil
	case []any:
		if len(s) != 2 {
			return nil, fmt.Errorf("Fn::Sub wants [string, variables]")
		}
		str, ok := s[0].(string)
		if !ok {
			return nil, fmt.Errorf("Fn::Sub: first argument is %T, not a string", s[0])
		}
		vars, err := r.expandLoops(s[1], bindings)
		if err != nil {
			return nil, err
		}
		return map[string]any{"Fn::Sub": []any{substituteLoop(str, bindings), vars}}, nil
	}
	return nil, fmt.Errorf("Fn::Sub: argument is %T", sub)
}

// put adds key to m, refusing a duplicate (two loop items giving the same logical id).
func put(m map[string]any, key string, v any) error {
	if _, dup := m[key]; dup {
		return fmt.Errorf("duplicate key %s", key)
	}
	m[key] = v
	return nil
}

var nonAlnum = regexp.MustCompile(`[^A-Za-z0-9]`)

func substituteLoop(s string, bindings map[string]string) string {
	for id, item := range bindings {
		s = strings.ReplaceAll(s, "${"+id+"}", item)
		s = strings.ReplaceAll(s, "&{"+id+"}", nonAlnum.ReplaceAllString(item, ""))
	}
	return s
}

// checkDependsOn refuses a DependsOn naming no resource of the template, as CloudFormation
// does ("Unresolved resource dependencies").
func checkDependsOn(resources map[string]any) error {
	var missing []string
	for id, res := range resources {
		m, _ := res.(map[string]any)
		var deps []string
		switch d := m["DependsOn"].(type) {
		case nil:
		case string:
			deps = []string{d}
		case []any:
			for _, e := range d {
				s, ok := e.(string)
				if !ok {
					return fmt.Errorf("resource %s: DependsOn holds %T, not a logical id", id, e)
				}
				deps = append(deps, s)
			}
		default:
			return fmt.Errorf("resource %s: DependsOn is %T, not a logical id or a list of them", id, d)
		}
		for _, dep := range deps {
			if _, ok := resources[dep]; !ok {
				missing = append(missing, dep)
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("unresolved resource dependencies %v in the Resources block of the template", missing)
	}
	return nil
}

// checkRules evaluates the template's Rules as CloudFormation does before it creates a
// change set: for each rule whose RuleCondition holds, every Assert must be true.
func (r *renderer) checkRules(v any) error {
	rules, _ := v.(map[string]any)
	for _, name := range sortedKeys(rules) {
		rule, _ := rules[name].(map[string]any)
		if c, ok := rule["RuleCondition"]; ok {
			applies, err := r.boolean(c, nil, nil)
			if err != nil {
				return fmt.Errorf("rule %s condition: %w", name, err)
			}
			if !applies {
				continue
			}
		}
		asserts, _ := rule["Assertions"].([]any)
		if len(asserts) == 0 {
			return fmt.Errorf("rule %s has no Assertions", name)
		}
		for _, a := range asserts {
			am, _ := a.(map[string]any)
			ok, err := r.boolean(am["Assert"], nil, nil)
			if err != nil {
				return fmt.Errorf("rule %s: %w", name, err)
			}
			if !ok {
				return fmt.Errorf("rule %s: %v", name, am["AssertDescription"])
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// condition evaluates a named condition, detecting cycles.
func (r *renderer) condition(name string, conds map[string]any, seen map[string]bool) (bool, error) {
	if v, ok := r.conditions[name]; ok {
		return v, nil
	}
	if seen[name] {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	expr, ok := conds[name]
	if !ok {
		return false, fmt.Errorf("unknown condition %s", name)
	}
	if seen == nil {
		seen = map[string]bool{}
	}
	seen[name] = true
	v, err := r.boolean(expr, conds, seen)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	r.conditions[name] = v
	return v, nil
}

func (r *renderer) boolean(expr any, conds map[string]any, seen map[string]bool) (bool, error) {
	m, ok := expr.(map[string]any)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("not a condition function: %v", expr)
	}
	for fn, arg := range m {
		args, _ := arg.([]any)
		switch fn {
		case "Condition":
			return r.condition(arg.(string), conds, seen)
		case "Fn::Equals":
			if len(args) != 2 {
				return false, fmt.Errorf("Fn::Equals wants 2 arguments")
			}
			a, err := r.resolve(args[0])
			if err != nil {
				return false, err
			}
			b, err := r.resolve(args[1])
			if err != nil {
				return false, err
			}
			// CloudFormation compares parameter values as strings.
			return scalarString(a) == scalarString(b), nil
		case "Fn::Contains":
			// Rules only: whether the list holds the value.
			if len(args) != 2 {
				return false, fmt.Errorf("Fn::Contains wants 2 arguments")
			}
			list, err := r.resolve(args[0])
			if err != nil {
				return false, err
			}
			v, err := r.resolve(args[1])
			if err != nil {
				return false, err
			}
			l, ok := list.([]any)
			if !ok {
				return false, fmt.Errorf("Fn::Contains: %v is not a list", list)
			}
			return containsString(l, scalarString(v)), nil
		case "Fn::Not":
			if len(args) != 1 {
				return false, fmt.Errorf("Fn::Not wants 1 argument")
			}
			v, err := r.boolean(args[0], conds, seen)
			return !v, err
		case "Fn::And", "Fn::Or":
			all := fn == "Fn::And"
			for _, a := range args {
				v, err := r.boolean(a, conds, seen)
				if err != nil {
					return false, err
				}
				if v != all {
					return v, nil
				}
			}
			return all, nil
		}
		return false, fmt.Errorf("unsupported condition function %s", fn)
	}
	panic("unreachable")
}

// resolve evaluates the intrinsic functions in v.
func (r *renderer) resolve(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for fn, arg := range x {
				if fn == "Ref" || strings.HasPrefix(fn, "Fn::") {
					return r.intrinsic(fn, arg)
				}
			}
		}
		out := map[string]any{}
		for k, e := range x {
			rv, err := r.resolve(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if _, drop := rv.(noValue); !drop {
				out[k] = rv
			}
		}
		return out, nil
	case []any:
		out := []any{}
		for _, e := range x {
			rv, err := r.resolve(e)
			if err != nil {
				return nil, err
			}
			if _, drop := rv.(noValue); !drop {
				out = append(out, rv)
			}
		}
		return out, nil
	}
	return v, nil
}

func (r *renderer) intrinsic(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		name, _ := arg.(string)
		return r.ref(name)
	case "Fn::GetAtt":
		var parts []string
		switch a := arg.(type) {
		case string:
			parts = strings.SplitN(a, ".", 2)
		case []any:
			for _, p := range a {
				parts = append(parts, fmt.Sprint(p))
			}
		}
		if len(parts) != 2 || !r.resources[parts[0]] {
			return nil, fmt.Errorf("Fn::GetAtt %v: not an attribute of a resource of this template", arg)
		}
		return getAttPlaceholder(parts[0], parts[1]), nil
	case "Fn::Sub":
		s, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("Fn::Sub: only the string form is supported")
		}
		var subErr error
		out := subVar.ReplaceAllStringFunc(s, func(m string) string {
			name := m[2 : len(m)-1]
			if i := strings.IndexByte(name, '.'); i > 0 && r.resources[name[:i]] {
				return getAttPlaceholder(name[:i], name[i+1:])
			}
			v, err := r.ref(name)
			if err != nil {
				subErr = err
				return m
			}
			switch x := v.(type) {
			case string:
				return x
			case float64:
				return scalarString(x)
			}
			subErr = fmt.Errorf("Fn::Sub: ${%s} is not a string", name)
			return m
		})
		return out, subErr
	case "Fn::Join":
		args, _ := arg.([]any)
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::Join wants [delimiter, list]")
		}
		sep, _ := args[0].(string)
		list, err := r.resolve(args[1])
		if err != nil {
			return nil, err
		}
		items, ok := list.([]any)
		if !ok {
			return nil, fmt.Errorf("Fn::Join: %v is not a list", list)
		}
		parts := make([]string, len(items))
		for i, it := range items {
			parts[i] = scalarString(it)
		}
		return strings.Join(parts, sep), nil
	case "Fn::If":
		args, _ := arg.([]any)
		if len(args) != 3 {
			return nil, fmt.Errorf("Fn::If wants 3 arguments")
		}
		name, _ := args[0].(string)
		v, ok := r.conditions[name]
		if !ok {
			return nil, fmt.Errorf("Fn::If: unknown condition %s", name)
		}
		if v {
			return r.resolve(args[1])
		}
		return r.resolve(args[2])
	}
	return nil, fmt.Errorf("unsupported intrinsic %s", fn)
}

var subVar = regexp.MustCompile(`\$\{[A-Za-z0-9:._]+\}`)

func (r *renderer) ref(name string) (any, error) {
	if name == "AWS::NoValue" {
		return noValue{}, nil
	}
	if v, ok := pseudo[name]; ok {
		return v, nil
	}
	if v, ok := r.params[name]; ok {
		if r.numbers[name] {
			// CloudFormation passes a Number parameter as a number to numeric properties.
			f, _ := strconv.ParseFloat(v.(string), 64)
			return f, nil
		}
		return v, nil
	}
	if r.resources[name] {
		return refPlaceholder(name), nil
	}
	return nil, fmt.Errorf("Ref %s: no such parameter or resource", name)
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// scalarString formats a YAML scalar as CloudFormation passes parameter values: as text,
// numbers without an exponent.
func scalarString(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func containsString(list []any, s string) bool {
	for _, e := range list {
		if scalarString(e) == s {
			return true
		}
	}
	return false
}
