"""The study: experiments as data, analysis of the outcome tables, the book's tables and figures,
the paper's reference numbers, the findings each chapter states, and the cost model."""
