package credentials

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
)

// RemoveIfEmpty removes the file when it holds nothing: no member at all
// but a null OPENAI_API_KEY (what an [AuthFile] with every field cleared
// encodes to). It takes agentauth's own lock and re-reads the file
// under it; a missing file is not an error. It reports whether it removed
// the file.
func (s *FileStore) RemoveIfEmpty(ctx context.Context) (bool, error) {
	release, err := lockAuthStorage(ctx, s.path)
	if err != nil {
		return false, err
	}
	defer release()
	target := writeTarget(s.path)
	data, _, err := readAuthBytes(target)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, withPath(err, s.path)
	}
	af, err := ParseAuthFile(data)
	if err != nil {
		return false, withPath(err, s.path)
	}
	out, err := af.Marshal()
	if err != nil {
		return false, err
	}
	empty, _ := (&AuthFile{}).Marshal()
	if !bytes.Equal(out, empty) {
		return false, nil
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, &LoadError{Path: s.path, Err: err}
	}
	return true, nil
}
