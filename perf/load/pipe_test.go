package load

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

type procHolderTest struct {
	in  io.Writer
	out io.Reader
	br  *bufio.Reader
}

func (p *procHolderTest) send(spec HolderSpec) error {
	b, _ := json.Marshal(spec)
	_, err := p.in.Write(append(b, '\n'))
	p.br = bufio.NewReader(p.out)
	return err
}

func (p *procHolderTest) ask(cmd string) (string, error) {
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		return "", err
	}
	s, err := p.br.ReadString('\n')
	return strings.TrimSpace(s), err
}
