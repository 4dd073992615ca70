package x
import ("testing";"fmt";"github.com/eks-unauthorized-access/detector/internal/workload")
func TestX(t *testing.T){ g:=workload.New(1); d:=g.Delivery(6_500_000); fmt.Println(d.Events,d.AuditBytes,d.AuditBytes/d.Events,len(d.Compressed),len(d.Event),d.ForbiddenCreates,d.ForbiddenOther); l,_:=g.Line(); fmt.Println(string(l)); fmt.Println(string(d.Message[:3000]))}
