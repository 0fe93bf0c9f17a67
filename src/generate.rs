//! Generating a token sequence from a model that predicts one token at a time: greedy search
//! and beam search, with the rules Hugging Face's `generate` and Whisper's decoder apply to the
//! scores (suppressed tokens, a minimum length, no repeated n-grams, a length penalty). The
//! model's per-step state — an RNN's hidden state, a transformer's key/value cache — is its own
//! ([`Decoder::State`]); search only keeps, forks and drops hypotheses.

use anyhow::Result;

/// A model that, fed one token per hypothesis, scores the next.
pub trait Decoder {
    /// What the model carries from step to step, for all hypotheses at once.
    type State;

    /// Feed each hypothesis its latest token (`tokens[h]`); returns each hypothesis's
    /// log-probabilities of the next token (`[hypotheses][vocabulary]`) and the new state.
    fn step(&self, state: Self::State, tokens: &[u32]) -> Result<(Vec<Vec<f32>>, Self::State)>;

    /// The states of the hypotheses `rows`, in that order (a row may repeat: a hypothesis that
    /// forks into several continuations).
    fn select(&self, state: Self::State, rows: &[usize]) -> Self::State;
}

/// How to search.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// Hypotheses kept at each step; 1 is greedy search.
    pub beams: usize,
    /// New tokens at most (the end token included).
    pub max_tokens: usize,
    /// New tokens at least before the end token may come.
    pub min_tokens: usize,
    /// A finished hypothesis scores its log-probability / length^penalty (Hugging Face's
    /// `length_penalty`: above 0 favours longer sequences).
    pub length_penalty: f64,
    /// A token that would repeat an n-gram of this size already generated is banned (0: off).
    pub no_repeat_ngram: usize,
    /// The token that ends a sequence.
    pub end: u32,
    /// Tokens never generated.
    pub suppress: Vec<u32>,
    /// Tokens not generated first (Whisper's `suppress_blank`: no leading space or end).
    pub suppress_first: Vec<u32>,
    /// Beam search stops as soon as `beams` hypotheses ended (Hugging Face's
    /// `early_stopping=True`, CTranslate2's beam search as faster-whisper runs it); otherwise
    /// once no live hypothesis can beat the ended ones.
    pub early_stopping: bool,
}

impl Search {
    /// Greedy search up to `max_tokens` new tokens ending with `end`.
    pub fn greedy(end: u32, max_tokens: usize) -> Search {
        Search {
            beams: 1,
            max_tokens,
            min_tokens: 0,
            length_penalty: 1.0,
            no_repeat_ngram: 0,
            end,
            suppress: Vec::new(),
            suppress_first: Vec::new(),
            early_stopping: false,
        }
    }
}

/// A sequence being generated.
#[derive(Debug, Clone)]
struct Hypothesis {
    tokens: Vec<u32>,
    /// Sum of the log-probabilities of `tokens`.
    score: f64,
}

/// The best sequence `model` generates after `prompt` (fed first, one token at a time; at least
/// one token) from `state`, without the prompt and the end token.
pub fn generate<D: Decoder>(
    model: &D,
    mut state: D::State,
    prompt: &[u32],
    search: &Search,
) -> Result<Vec<u32>> {
    let Some((&last, before)) = prompt.split_last() else {
        anyhow::bail!("generation needs a prompt of at least one token");
    };
    for &token in before {
        state = model.step(state, &[token])?.1;
    }
    let beams = search.beams.max(1);
    let mut live = vec![Hypothesis {
        tokens: Vec::new(),
        score: 0.0,
    }];
    let mut finished: Vec<(f64, Vec<u32>)> = Vec::new();
    let mut feed = vec![last];
    for position in 0..search.max_tokens {
        let (scores, next) = model.step(state, &feed)?;
        // Every continuation of every live hypothesis, best first.
        let mut candidates: Vec<(f64, usize, u32)> = Vec::new();
        for (h, (hyp, mut logp)) in live.iter().zip(scores).enumerate() {
            restrict(&mut logp, &hyp.tokens, position, search);
            let mut ranked: Vec<u32> = (0..logp.len() as u32)
                .filter(|&t| logp[t as usize].is_finite())
                .collect();
            // Best first, the lower token first on ties. Only the best 2 * beams are sorted:
            // a whole vocabulary (Whisper's 51,864 tokens) took 3 ms a step.
            let order = |a: &u32, b: &u32| {
                logp[*b as usize]
                    .total_cmp(&logp[*a as usize])
                    .then(a.cmp(b))
            };
            let keep = 2 * beams;
            if ranked.len() > keep {
                ranked.select_nth_unstable_by(keep - 1, order);
                ranked.truncate(keep);
            }
            ranked.sort_by(order);
            candidates.extend(
                ranked
                    .into_iter()
                    .map(|t| (hyp.score + logp[t as usize] as f64, h, t)),
            );
        }
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut kept = Vec::new();
        for (score, h, token) in candidates {
            let mut tokens = live[h].tokens.clone();
            tokens.push(token);
            if token == search.end {
                let length = tokens.len() as f64;
                tokens.pop();
                finished.push((score / length.powf(search.length_penalty), tokens));
            } else {
                kept.push((h, Hypothesis { tokens, score }));
                // Ends ranked above the kept continuations count; those below do not.
                if kept.len() == beams {
                    break;
                }
            }
        }
        if kept.is_empty() || done(&finished, &kept, beams, search) {
            live = Vec::new();
            break;
        }
        let rows: Vec<usize> = kept.iter().map(|(h, _)| *h).collect();
        feed = kept
            .iter()
            .map(|(_, hyp)| *hyp.tokens.last().unwrap())
            .collect();
        live = kept.into_iter().map(|(_, hyp)| hyp).collect();
        state = model.select(next, &rows);
    }
    // Hypotheses still going when the length runs out count only when none ended, as in
    // CTranslate2: a repetition loop cut short has a high mean log-probability and would
    // otherwise beat the sentence that ended (Whisper's beam on "five five" wrote "5.5.5…").
    if finished.is_empty() {
        for hyp in live {
            let length = hyp.tokens.len().max(1) as f64;
            finished.push((hyp.score / length.powf(search.length_penalty), hyp.tokens));
        }
    }
    Ok(finished
        .into_iter()
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, tokens)| tokens)
        .unwrap_or_default())
}

/// Whether search can stop: greedy once it ended; a beam once `beams` hypotheses ended and no
/// live one can beat the worst of them (their scores only fall; Hugging Face's heuristic).
fn done(
    finished: &[(f64, Vec<u32>)],
    kept: &[(usize, Hypothesis)],
    beams: usize,
    search: &Search,
) -> bool {
    if beams == 1 {
        return !finished.is_empty();
    }
    if finished.len() < beams {
        return false;
    }
    if search.early_stopping {
        return true;
    }
    let worst = finished.iter().map(|f| f.0).fold(f64::INFINITY, f64::min);
    let best_live = kept
        .iter()
        .map(|(_, h)| h.score / (h.tokens.len() as f64).powf(search.length_penalty))
        .fold(f64::NEG_INFINITY, f64::max);
    best_live <= worst
}

/// Apply the search's rules to the scores of a hypothesis that has generated `tokens`.
fn restrict(logp: &mut [f32], tokens: &[u32], position: usize, search: &Search) {
    let mut ban = |t: u32| {
        if let Some(v) = logp.get_mut(t as usize) {
            *v = f32::NEG_INFINITY;
        }
    };
    search.suppress.iter().for_each(|&t| ban(t));
    if position == 0 {
        search.suppress_first.iter().for_each(|&t| ban(t));
    }
    if position < search.min_tokens {
        ban(search.end);
    }
    let n = search.no_repeat_ngram;
    if n > 0 && tokens.len() >= n {
        // The last n-1 tokens, followed by t, must not be an n-gram seen before.
        let tail = &tokens[tokens.len() + 1 - n..];
        for window in tokens.windows(n) {
            if &window[..n - 1] == tail {
                ban(window[n - 1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bigram model: the next token's log-probabilities depend on the last token only.
    struct Bigram(Vec<Vec<f32>>);

    impl Decoder for Bigram {
        type State = usize;

        fn step(&self, hyps: usize, tokens: &[u32]) -> Result<(Vec<Vec<f32>>, usize)> {
            assert_eq!(tokens.len(), hyps.max(1), "one token per hypothesis");
            let scores = tokens
                .iter()
                .map(|&t| self.0[t as usize].iter().map(|p| p.ln()).collect())
                .collect();
            Ok((scores, tokens.len()))
        }

        fn select(&self, _: usize, rows: &[usize]) -> usize {
            rows.len()
        }
    }

    /// Tokens: 0 start, 1 end, 2 "a", 3 "b".
    fn model() -> Bigram {
        Bigram(vec![
            vec![0.0, 0.0, 0.6, 0.4], // after start: a (0.6) or b (0.4)
            vec![0.0, 1.0, 0.0, 0.0],
            vec![0.0, 0.5, 0.0, 0.5], // after a: end or b, even
            vec![0.0, 0.9, 0.1, 0.0], // after b: end, mostly
        ])
    }

    #[test]
    fn greedy_takes_the_likeliest_token_each_step() {
        // start → a (0.6) → end/b tie, end first by index... the sort is stable on score:
        // a then end (0.5) scores 0.3; greedy ends there.
        let out = generate(&model(), 0, &[0], &Search::greedy(1, 10)).unwrap();
        assert_eq!(out, vec![2]);
    }

    #[test]
    fn beam_search_finds_a_likelier_sequence_than_greedy() {
        // Greedy: "a" (0.6 × 0.5 = 0.30). Beam: "b" (0.4 × 0.9 = 0.36).
        let search = Search {
            beams: 2,
            length_penalty: 0.0,
            ..Search::greedy(1, 10)
        };
        assert_eq!(generate(&model(), 0, &[0], &search).unwrap(), vec![3]);
    }

    #[test]
    fn an_ended_sequence_beats_a_loop_cut_short() {
        // After start: "a" or the end, even; after "a": "a" again, mostly. "a a a a" cut at
        // the length limit has the best mean log-probability, but it never ended.
        let loop_model = Bigram(vec![
            vec![0.0, 0.5, 0.5],
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.1, 0.9],
        ]);
        let search = Search {
            beams: 2,
            ..Search::greedy(1, 4)
        };
        assert_eq!(
            generate(&loop_model, 0, &[0], &search).unwrap(),
            Vec::<u32>::new()
        );
        // Early stopping: done once two hypotheses ended ("" and "a"), never looking further.
        let early = Search {
            beams: 2,
            early_stopping: true,
            ..Search::greedy(1, 50)
        };
        assert_eq!(
            generate(&loop_model, 0, &[0], &early).unwrap(),
            Vec::<u32>::new()
        );
        // Greedy never ends here: what it has when the length runs out is the answer.
        let greedy = Search {
            suppress_first: vec![1],
            ..Search::greedy(1, 4)
        };
        assert_eq!(generate(&loop_model, 0, &[0], &greedy).unwrap(), vec![2; 4]);
    }

    #[test]
    fn rules_restrict_what_comes_out() {
        let first = Search {
            suppress_first: vec![2],
            ..Search::greedy(1, 10)
        };
        assert_eq!(generate(&model(), 0, &[0], &first).unwrap(), vec![3]);
        let long = Search {
            min_tokens: 3,
            ..Search::greedy(1, 10)
        };
        let out = generate(&model(), 0, &[0], &long).unwrap();
        assert!(out.len() >= 2, "{out:?}");
        let capped = Search {
            suppress: vec![1],
            ..Search::greedy(1, 4)
        };
        assert_eq!(generate(&model(), 0, &[0], &capped).unwrap().len(), 4);
        // a b a b… would repeat the bigram (a, b): banned, so the end comes instead.
        let no_repeat = Search {
            no_repeat_ngram: 2,
            min_tokens: 3,
            ..Search::greedy(1, 10)
        };
        let out = generate(&model(), 0, &[0], &no_repeat).unwrap();
        let bigrams: Vec<&[u32]> = out.windows(2).collect();
        for (i, b) in bigrams.iter().enumerate() {
            assert!(!bigrams[i + 1..].contains(b), "{out:?}");
        }
    }
}
