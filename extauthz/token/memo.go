package token

import "sync"

// memo holds one value derived from a Token, computed once.
type memo struct {
	once sync.Once
	v    any
}

// Memo returns f's result for this token, computing it on the first call
// only, so that work derived from a verified token (such as its policy input
// form) is shared by every cache hit that returns the same *Token. f must be
// a pure function of the token. Tokens not made by Verify compute f each
// time.
func (t *Token) Memo(f func() any) any {
	if t.memo == nil {
		return f()
	}
	t.memo.once.Do(func() { t.memo.v = f() })
	return t.memo.v
}
