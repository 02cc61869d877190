// Text for SVG/XML output: the characters that would end or break a text node or an attribute value
// (& < > ") become numeric character references.
export function escapeXml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
