"""The reader's span decoding on a hand-made example; its loss in length groups against one padded batch."""

from __future__ import annotations

import torch

from xqglib.method.reading import Reader, ReaderExample, Span, best_over_passages, best_span
from xqglib.models.registry import load_reader, load_tokenizer

CONTEXT = "Warsaw is the capital of Poland."
#          0      7  10  14      22 25
# tokens: [CLS] where ? [SEP] Warsaw is the capital of Poland . [SEP]
OFFSETS = [None, None, None, None, (0, 6), (7, 9), (10, 13), (14, 21), (22, 24), (25, 31), (31, 32), None]


def test_the_best_valid_span_by_hand():
    start = [9.0, 0, 0, 0, 3.0, 0, 0, 1.0, 0, 0.5, 0, 0]   # [CLS] is best but not in the context
    end = [9.0, 0, 0, 0, 2.5, 0, 0, 0.2, 0, 4.0, 0, 0]
    span = best_span(start, end, OFFSETS, CONTEXT)
    # candidates: (4, 4) 3 + 2.5 = 5.5; (4, 9) 3 + 4 = 7.0; (9, 9) 4.5; (7, 9) 5.0
    assert span == Span("Warsaw is the capital of Poland", 7.0, 0, 0, 31)
    # with at most 3 tokens, (4, 9) is too long: the best is (4, 4), 5.5
    assert best_span(start, end, OFFSETS, CONTEXT, max_answer_tokens=3).text == "Warsaw"
    # an end before its start is never taken
    assert best_span([0, 0, 0, 0, 0, 0, 0, 0, 0, 5.0, 0, 0], [0, 0, 0, 0, 5.0, 0, 0, 0, 0, 0, 0, 0],
                     OFFSETS, CONTEXT, n_best=1) is None


def test_the_best_span_over_passages():
    a, b = Span("x", 1.0, 0, 0, 1), Span("y", 2.5, 1, 0, 1)
    assert best_over_passages([a, None, b]) == b
    assert best_over_passages([None]) is None


def test_the_loss_in_length_groups_is_the_loss_of_one_padded_batch():
    long = "The river flows north through the valley for many miles. " * 4 + "Warsaw is the capital of Poland."
    short = "Kraków lies on the Vistula."
    examples = [ReaderExample("What is the capital of Poland?", long, "Warsaw", long.index("Warsaw")),
                ReaderExample("Where does Kraków lie?", short, "the Vistula", short.index("the Vistula")),
                ReaderExample("Which way does the river flow?", long, "north", long.index("north"))]
    torch.manual_seed(0)
    model = load_reader("tiny-bert").eval()  # no dropout: both paths see the same network
    tok = load_tokenizer("tiny-bert")
    grouped, padded = Reader(model, tok, max_len=40, stride=12, group=2), Reader(model, tok, max_len=40, stride=12, group=None)
    lengths = [len(ids) for ids in padded.windows([e.question for e in examples], [e.context for e in examples],
                                                  padded=False)["input_ids"]]
    assert len(lengths) > 4 and len(set(lengths)) > 2  # windows of several lengths, several groups

    def loss_and_grads(reader: Reader) -> tuple[float, list[torch.Tensor]]:
        model.zero_grad()
        loss = reader.loss(examples)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    (a, grads_a), (b, grads_b) = loss_and_grads(grouped), loss_and_grads(padded)
    assert abs(a - b) <= 1e-6 * abs(b)
    assert all(torch.allclose(x, y, atol=1e-6, rtol=1e-4) for x, y in zip(grads_a, grads_b))
    # by hand: every window alone, without padding, its start and end cross-entropies averaged
    with torch.no_grad():
        alone = []
        for e in examples:
            f = padded.windows([e.question], [e.context], padded=False)
            starts, ends = padded.labels(f, [e])
            for w, ids in enumerate(f["input_ids"]):
                out = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long))
                alone.append((torch.nn.functional.cross_entropy(out.start_logits, starts[w:w + 1])
                              + torch.nn.functional.cross_entropy(out.end_logits, ends[w:w + 1])) / 2)
    assert abs(a - float(torch.stack(alone).mean())) < 1e-5
