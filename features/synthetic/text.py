"""Ticket and survey text for the synthetic world: tone and topic follow the latent state.

A ticket's tone (frustrated, neutral, pleased) is drawn from the account's latent health and
its change over the month (frustration when health falls, praise when it rises); its topic
from the taxonomy, weighted by what is going on (incidents bring bug and performance
tickets, weak health brings pricing and competitor talk, new customers onboarding
questions). The true tone and topic go to the ground truth; the text is assembled from
phrase tables, so the analyser has to read it, and a few texts are empty or in another
language, as real exports are.

This module draws only from its own random stream: with text off, or on, every other
column of the world is the same for the same seed.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from features.catalogue import TEXT_TONES, TEXT_TOPICS
from features.synthetic.intent import IntentParams

FRUSTRATED, NEUTRAL, PLEASED = range(3)  # indices into TEXT_TONES

# Made-up vendor names: a competitor mention in the text, never a real company.
COMPETITORS = ("Northwind", "Contoso", "Fabrikam")

# Per topic: a subject and a factual sentence (no sentiment words of their own, so the tone
# comes from the opener and the closer).
_TOPIC_PHRASES: dict[str, tuple[tuple[str, str], ...]] = {
    "billing": (
        ("Invoice question", "Our latest invoice lists the wrong number of seats."),
        ("Billing address", "The billing contact on the invoice needs to change."),
        ("Charged twice this month", "The card was charged twice for the same invoice."),
        ("Statement", "The amounts on last month's statement do not add up."),
    ),
    "bugs": (
        ("Export bug", "The CSV export stops halfway with an error."),
        ("Dashboard shows a bug", "Filters on the dashboard reset after a refresh, a bug."),
        ("Sync error", "The nightly sync ends with an error message."),
        ("Something is off", "Saved views disappear when two people edit them."),
    ),
    "performance": (
        ("Slow reports", "Reports take minutes to load for our team."),
        ("Timeouts", "Searches time out during the morning peak."),
        ("Latency", "Page loads are slow since last week."),
        ("Waiting", "Each click takes ages to respond for the sales team."),
    ),
    "onboarding": (
        ("Setup questions", "We are still setting up the workspace for the new team."),
        ("Onboarding", "Our admins need a walkthrough of the onboarding steps."),
        ("Getting started", "How do we import users during setup?"),
        ("New team", "Our new admins do not know where to start with the workspace."),
    ),
    "missing_feature": (
        ("Feature request", "We need an API endpoint for bulk updates, it is missing."),
        ("Missing report", "There is no report for usage by department."),
        ("Feature request: SSO groups", "We need SSO group mapping, which the product lacks."),
        ("Idea", "It would help to schedule exports by email, which is not possible today."),
    ),
    "pricing": (
        ("Pricing for next year", "The price per seat for next year is higher than budgeted."),
        ("Pricing question", "Finance asks about the pricing of the enterprise tier."),
        ("Cost review", "Our finance team is reviewing the cost of the plan."),
        ("Renewal quote", "The renewal quote is above what finance approved."),
    ),
    "competitor": (
        ("Comparing vendors", "Our team is comparing you with {competitor}."),
        ("{competitor} demo", "Management saw a demo of {competitor} last week."),
        ("Alternatives", "We were asked to look at {competitor} as an alternative."),
        ("Other tools", "Procurement asked us to evaluate {competitor} before the renewal."),
    ),
}
# What an account intending to leave writes (features.synthetic.intent), besides the topic
# tables' own pricing and competitor sentences: renewal terms, evaluations, leaving.
_INTENT_PHRASES: dict[str, tuple[tuple[str, str], ...]] = {
    "pricing": (
        ("Renewal terms", "We are reviewing our options before the renewal, the price is high."),
        ("Contract renewal", "Finance wants better terms before we sign the renewal."),
        ("Budget for next year", "Our budget for this tool is being cut at renewal."),
        ("Quote", "Please send the cost of a smaller plan for the renewal."),
    ),
    "competitor": (
        ("Evaluation", "We are evaluating {competitor} ahead of our renewal."),
        ("Data export", "How would we export all our data if we switch to {competitor}?"),
        ("Vendor review", "Our new director prefers {competitor}; we are comparing both."),
        ("Trial", "Some teams started a trial of {competitor} this month."),
    ),
}
_INTENT_COMMENTS = (  # topic, true tone, words
    ("pricing", 0, "Too expensive for what we use, a disappointing renewal quote."),
    ("pricing", 1, "We are reviewing our options before the renewal."),
    ("competitor", 1, "Looking at alternatives, {competitor} costs less."),
    ("competitor", 0, "Frustrated, so our team is trialling {competitor}."),
)
_OPENERS = (
    (
        "This is really frustrating.",
        "We are very disappointed.",
        "Honestly, this is unacceptable.",
        "Our team is angry about this.",
    ),
    ("Hello,", "Hi team,", "Quick note:", "Good morning,"),
    (
        "Thanks for the great support so far!",
        "We love the product, thank you!",
        "Great work on the last release, thanks!",
        "Happy with the product overall, thanks!",
    ),
)
_CLOSERS = (
    (
        "This keeps happening and nobody fixes it.",
        "We are losing patience and considering our options.",
        "Terrible experience, please escalate.",
    ),
    ("Could you take a look?", "Let us know the next steps.", "Details are attached."),
    ("Appreciate the quick help, great job!", "Thanks again, excellent service.", "Cheers!"),
)
_COMMENTS = (
    (
        "Frustrated with the product lately.",
        "Disappointed, too many problems.",
        "Poor experience this quarter.",
    ),
    ("It does the job.", "Works as expected for our team.", "Okay overall."),
    (
        "Great product, we love it!",
        "Excellent support and a great team.",
        "Really happy with the results.",
    ),
)
# Texts in another language (the analyser must not read them as negative or positive).
_FOREIGN = (
    "Die Rechnung ist falsch, bitte prüfen Sie die Anzahl der Lizenzen.",
    "El informe no se carga desde ayer, por favor revisen.",
    "Le tableau de bord ne se met pas à jour depuis lundi.",
)


class TextConfig(BaseModel):
    """How the synthetic world writes ticket and survey text (off by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        False,
        description="Write subject and body on tickets and comment on NPS answers. Off by "
        "default: the default world's tables, and every figure measured on them, stay as "
        "they were.",
    )
    tone_health: float = Field(1.0, description="Tone logit per unit of latent health.")
    tone_change: float = Field(
        2.5, description="Tone logit per unit of health change over the month (falls: worse)."
    )
    tone_noise: float = Field(0.8, description="Logistic noise scale of the tone.")
    ticket_offset: float = Field(
        -0.3, description="Tickets lean negative (people write in with problems)."
    )
    cut: float = Field(1.0, description="Tone score beyond +-cut: pleased / frustrated.")
    topic_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "billing": 1.0,
            "bugs": 1.5,
            "performance": 1.0,
            "onboarding": 0.6,
            "missing_feature": 1.0,
            "pricing": 0.5,
            "competitor": 0.25,
        },
        description="Base weight of each topic of the taxonomy (catalogue.TEXT_TOPICS).",
    )
    comment_share: float = Field(0.6, ge=0, le=1, description="NPS answers with a comment.")
    empty_share: float = Field(0.03, ge=0, le=1, description="Texts left empty.")
    foreign_share: float = Field(0.02, ge=0, le=1, description="Texts in another language.")


def _tone(rng: np.random.Generator, z: np.ndarray, cfg: TextConfig) -> np.ndarray:
    """Tone codes from a latent score (higher: happier) plus logistic noise."""
    u = rng.random(len(z)).clip(1e-9, 1 - 1e-9)
    s = z + cfg.tone_noise * np.log(u / (1 - u))
    return np.where(s < -cfg.cut, FRUSTRATED, np.where(s > cfg.cut, PLEASED, NEUTRAL))


def _pick(rng: np.random.Generator, n_options: int, n: int) -> np.ndarray:
    return rng.integers(0, n_options, n)


def _oddities(rng: np.random.Generator, texts: list[str], cfg: TextConfig) -> list[str]:
    """Blank a few texts and put a few in another language, as real exports have."""
    u = rng.random(len(texts))
    foreign = rng.integers(0, len(_FOREIGN), len(texts))
    for i in np.flatnonzero(u < cfg.empty_share + cfg.foreign_share):
        texts[i] = "" if u[i] < cfg.empty_share else _FOREIGN[foreign[i]]
    return texts


def ticket_text(
    rng: np.random.Generator,
    cfg: TextConfig,
    health: np.ndarray,
    change: np.ndarray,
    incident: np.ndarray,
    new_customer: np.ndarray,
    intent: tuple[np.ndarray, np.ndarray, IntentParams] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Subject, body, true tone and true topic codes of one batch of tickets.

    ``intent``: whether each writer's intent to leave shows, whether the ticket is one the
    intent wrote (a question about leaving), and how it shows (None: the world has no
    intents; nothing is drawn for them, so the text is as without).
    """
    n = len(health)
    z = cfg.ticket_offset + cfg.tone_health * health + cfg.tone_change * change
    if intent is not None:
        z = z + np.where(intent[0], intent[2].tone_offset, 0.0)
    tone = _tone(rng, z, cfg)
    w = np.array([cfg.topic_weights.get(t, 0.0) for t in TEXT_TOPICS])
    weights = np.tile(w, (n, 1))
    col = {t: i for i, t in enumerate(TEXT_TOPICS)}
    weights[:, col["bugs"]] *= np.where(incident, 4.0, 1.0)
    weights[:, col["performance"]] *= np.where(incident, 3.0, 1.0)
    weak = np.exp(-0.8 * np.clip(health, -3, 3))
    weights[:, col["competitor"]] *= weak
    weights[:, col["pricing"]] *= weak
    weights[:, col["onboarding"]] *= np.where(new_customer, 4.0, 1.0)
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    topic = np.minimum((rng.random((n, 1)) > cum).sum(axis=1), len(TEXT_TOPICS) - 1)
    phrase = _pick(rng, 4, n)
    opener, closer, comp = _pick(rng, 4, n), _pick(rng, 3, n), _pick(rng, len(COMPETITORS), n)
    leaving = np.zeros(n, bool)
    if intent is not None:  # an intending account's tickets: more pricing and competitors
        shows, own, params = intent
        u = rng.random((n, 3))
        about = own | (shows & (u[:, 0] < params.topic_share))
        topic = np.where(
            about,
            np.where(u[:, 1] < 0.5, col["pricing"], col["competitor"]),
            topic,
        )
        # Its own questions in the intent tables' words, half of the others too.
        leaving = own | (about & (u[:, 2] < 0.5))
    subjects, bodies = [], []
    for t, k, tn, o, c, v, lv in zip(
        topic, phrase, tone, opener, closer, comp, leaving, strict=True
    ):
        table = _INTENT_PHRASES if lv else _TOPIC_PHRASES
        subj, sent = table[TEXT_TOPICS[t]][k]
        name = COMPETITORS[v]
        subjects.append(subj.replace("{competitor}", name))
        bodies.append(f"{_OPENERS[tn][o]} {sent.replace('{competitor}', name)} {_CLOSERS[tn][c]}")
    bodies = _oddities(rng, bodies, cfg)
    return (
        np.asarray(subjects, dtype=object),
        np.asarray(bodies, dtype=object),
        tone,
        topic,
    )


def nps_comment(
    rng: np.random.Generator,
    cfg: TextConfig,
    score: np.ndarray,
    change: np.ndarray,
    intent: tuple[np.ndarray, np.ndarray, IntentParams] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A comment for some NPS answers (None for the rest), its true tone and topic (-1: none).

    Comments carry no topic, except those of an account whose intent to leave shows
    (``intent``, as in :func:`ticket_text`): most of theirs are about pricing or competitors.
    """
    n = len(score)
    z = (score - 7.5) / 1.5 + cfg.tone_change * change
    if intent is not None:
        z = z + np.where(intent[0], intent[2].tone_offset, 0.0)
    tone = _tone(rng, z, cfg)
    has = rng.random(n) < cfg.comment_share
    pick = _pick(rng, 3, n)
    texts = [_COMMENTS[t][k] for t, k in zip(tone, pick, strict=True)]
    topic = np.full(n, -1)
    if intent is not None:
        u = rng.random(n)
        which = _pick(rng, len(_INTENT_COMMENTS), n)
        comp = _pick(rng, len(COMPETITORS), n)
        for i in np.flatnonzero(intent[0] & (u < intent[2].topic_share)):
            name, tone[i], sentence = _INTENT_COMMENTS[which[i]]
            texts[i] = sentence.replace("{competitor}", COMPETITORS[comp[i]])
            topic[i] = TEXT_TOPICS.index(name)
    texts = _oddities(rng, texts, cfg)
    comment = np.where(has, np.asarray(texts, dtype=object), None)
    return comment, np.where(has, tone, -1), np.where(has, topic, -1)


def tone_names(codes: np.ndarray) -> np.ndarray:
    """Tone codes as names (None where there is no text)."""
    names = np.asarray((*TEXT_TONES, None), dtype=object)
    return names[np.where(codes < 0, len(TEXT_TONES), codes)]
