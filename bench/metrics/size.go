package metrics

import (
	"debug/elf"
	"fmt"
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

// SymbolSizes returns the sizes of the symbols that occupy bytes in the file of an
// unstripped ELF binary (built without -s -w; bss left out), summed by the parts of
// sizeParts, plus "Go runtime, standard library, other" and the total. Shared tables
// (pclntab, go:func.*) belong to no package and count as other, so the shares of the
// packages are lower bounds.
func SymbolSizes(binary string) (parts []SizePart, total int64, err error) {
	f, err := elf.Open(binary)
	if err != nil {
		return nil, 0, fmt.Errorf("read symbols of %s: %w", binary, err)
	}
	defer func() { _ = f.Close() }()
	syms, err := f.Symbols()
	if err != nil {
		return nil, 0, fmt.Errorf("read symbols of %s: %w", binary, err)
	}
	sums := make([]int64, len(sizeParts)+1)
	for _, sym := range syms {
		if sym.Section == elf.SHN_UNDEF || int(sym.Section) >= len(f.Sections) || f.Sections[sym.Section].Type == elf.SHT_NOBITS {
			continue
		}
		i := len(sizeParts)
	parts:
		for j, p := range sizeParts {
			for _, prefix := range p.prefixes {
				if strings.Contains(sym.Name, prefix) {
					i = j
					break parts
				}
			}
		}
		sums[i] += int64(sym.Size) //nolint:gosec // symbol sizes fit
		total += int64(sym.Size)   //nolint:gosec // symbol sizes fit
	}
	for j, p := range sizeParts {
		parts = append(parts, SizePart{p.name, sums[j]})
	}
	parts = append(parts, SizePart{"Go runtime, standard library, other", sums[len(sizeParts)]})
	return parts, total, nil
}
