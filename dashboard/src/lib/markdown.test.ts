import { describe, expect, it } from 'vitest';
import { escapeHtml, renderMarkdown } from './markdown';

describe('renderMarkdown', () => {
  it('escapes raw HTML instead of rendering it', () => {
    const html = renderMarkdown('<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;script&gt;');
  });

  it('renders headings two levels down, lists, code and emphasis', () => {
    const html = renderMarkdown('# Card\n\n- **bold** item\n- `x<y`\n\n1. one\n2. two\n\n```\na < b\n```\n\n*it*');
    expect(html).toContain('<h3>Card</h3>');
    expect(html).toContain('<ul><li><strong>bold</strong> item</li><li><code>x&lt;y</code></li></ul>');
    expect(html).toContain('<ol><li>one</li><li>two</li></ol>');
    expect(html).toContain('<pre tabindex="0"><code>a &lt; b</code></pre>');
    expect(html).toContain('<em>it</em>');
  });

  it('keeps safe links and drops javascript: ones', () => {
    expect(renderMarkdown('[hub](https://huggingface.co/a?b=1&c=2)')).toContain(
      '<a href="https://huggingface.co/a?b=1&amp;c=2" rel="noopener noreferrer">hub</a>',
    );
    const bad = renderMarkdown('[x](javascript:alert(1))');
    expect(bad).not.toContain('href');
  });

  it('renders tables', () => {
    const html = renderMarkdown('| metric | value |\n|---|---|\n| loss | 0.9 |');
    expect(html).toContain('<table><thead><tr><th>metric</th><th>value</th></tr></thead><tbody><tr><td>loss</td><td>0.9</td></tr></tbody></table>');
  });

  it('leaves out the YAML front matter of a Hugging Face card', () => {
    const card = '---\nlibrary_name: transformers\nco2_eq_emissions:\n  emissions: 0.005\n---\n\n# pets\n';
    const html = renderMarkdown(card);
    expect(html).not.toContain('library_name');
    expect(html).toContain('pets');
    expect(renderMarkdown('# plain\n---\nnot front matter')).toContain('plain');
  });
  it('escapes quotes', () => expect(escapeHtml(`"'&`)).toBe('&quot;&#39;&amp;'));
});
