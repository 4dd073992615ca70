package metrics

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// sizeParts are the parts a bootstrap's symbols are split into, by the module they come
// from; the first part whose prefix a symbol name contains takes it.
var sizeParts = []struct {
	name     string
	prefixes []string
}{
	{"suppressions: CEL runtime (cel-go, protobuf, antlr)", []string{
		"cel.dev/", "google.golang.org/protobuf", "google.golang.org/genproto", "github.com/antlr4-go/",
		"golang.org/x/exp/", "github.com/stoewer/", "github.com/google/cel-go",
	}},
	{"suppressions: SSM client", []string{"aws-sdk-go-v2/service/ssm"}},
	{"DynamoDB client", []string{"aws-sdk-go-v2/service/dynamodb", "aws-sdk-go-v2/service/internal/endpoint-discovery"}},
	{"SNS client", []string{"aws-sdk-go-v2/service/sns"}},
	{"AWS SDK core and smithy", []string{"github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go"}},
	{"aws-lambda-go", []string{"github.com/aws/aws-lambda-go"}},
	{"this project", []string{"github.com/eks-unauthorized-access/"}},
}

// SizePart is the symbol bytes of one part of a binary.
type SizePart struct {
	Name  string
	Bytes int64
}

// SymbolSizes returns the sizes of the symbols of an unstripped binary (built without
// -s -w), summed by the parts of sizeParts, plus "Go runtime, standard library, other"
// and the total, from go tool nm. Symbol sizes leave out some tables (pclntab), so they
// add up to less than the file: use them as shares.
func SymbolSizes(ctx context.Context, binary string) (parts []SizePart, total int64, err error) {
	out, err := exec.CommandContext(ctx, "go", "tool", "nm", "-size", binary).Output()
	if err != nil {
		return nil, 0, fmt.Errorf("go tool nm %s: %w", binary, err)
	}
	sums := make([]int64, len(sizeParts)+1)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// address size type name
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		name := strings.Join(f[3:], " ")
		i := len(sizeParts)
	parts:
		for j, p := range sizeParts {
			for _, prefix := range p.prefixes {
				if strings.Contains(name, prefix) {
					i = j
					break parts
				}
			}
		}
		sums[i] += size
		total += size
	}
	for j, p := range sizeParts {
		parts = append(parts, SizePart{p.name, sums[j]})
	}
	parts = append(parts, SizePart{"Go runtime, standard library, other", sums[len(sizeParts)]})
	return parts, total, nil
}
