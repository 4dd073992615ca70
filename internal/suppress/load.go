package suppress

import (
	"context"
	"errors"
	"fmt"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Load compiles the suppressions of the function's configuration: the inline ones
// (SUPPRESSIONS) and, when parameter is not empty, those held by that SSM Parameter Store
// parameter (SUPPRESSIONS_PARAMETER), read once through client. It runs at start-up, so
// any error stops the function before its first invocation.
//
// A parameter that is missing or that the function may not read is an error naming the
// parameter. No error quotes the value of a SecureString parameter: an expression in it
// that does not compile is named by its position only, without its text or the
// compiler's message (which quotes the text).
func Load(ctx context.Context, client SSMGetter, inline []string, parameter string) (*Filter, error) {
	f, err := Compile(inline)
	if err != nil {
		return nil, fmt.Errorf("SUPPRESSIONS: %w", err)
	}
	if parameter == "" {
		return f, nil
	}
	typ, more, err := readParameter(ctx, client, parameter)
	if err != nil {
		return nil, fmt.Errorf("SUPPRESSIONS_PARAMETER: %w", err)
	}
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	var errs []error
	for i, text := range more {
		prg, readsIP, err := compileOne(e, text)
		switch {
		case err != nil && typ == ssmtypes.ParameterTypeSecureString:
			errs = append(errs, fmt.Errorf("suppression %d: %w", i+1, errHidden))
		case err != nil:
			errs = append(errs, fmt.Errorf("suppression %d %q: %w", i+1, text, err))
		default:
			f.exprs = append(f.exprs, text)
			f.programs = append(f.programs, prg)
			f.perIP = append(f.perIP, readsIP)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("SUPPRESSIONS_PARAMETER: SSM parameter %q: %w", parameter, errors.Join(errs...))
	}
	return f, nil
}

// errHidden stands for the compiler's message on an expression of a SecureString.
var errHidden = errors.New("does not compile (the parameter is a SecureString: its text is not shown; check it with go run ./cmd/replay --suppress)")
