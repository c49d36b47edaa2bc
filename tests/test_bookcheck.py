"""The typed-number check on hand-made pages."""

from xqglib.study.bookcheck import typed_numbers

PAGE = """<html><body><article>
<h1>Results</h1>
<p>xQG moves R@2kt by <span class="pasted-text">+0.20</span> points on B1 with mT5 (Table 1 below).</p>
<ul><li>The paper reports <span class="pasted-text">+3.0</span>; the level is p &lt; 0.05.</li></ul>
<table><tr><td>76.01</td></tr></table>
<pre>python -m xqglib run --set generator.steps=200</pre>
<p>See <a class="reference internal" href="x.html">6. Evaluation</a>.</p>
{extra}
</article></body></html>"""


def test_pasted_values_names_and_constants_pass():
    assert typed_numbers(PAGE.format(extra="")) == []


def test_a_typed_number_in_prose_is_found():
    found = typed_numbers(PAGE.format(extra="<p>The English-only retriever scores 83.79, and 1,282 paragraphs.</p>"))
    assert len(found) == 2 and "83.79" in found[0] and "1,282" in found[1]
    assert typed_numbers(PAGE.format(extra="<ul><li>gains 7 points</li></ul>")) != []
