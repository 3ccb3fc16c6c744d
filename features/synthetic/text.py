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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Subject, body, true tone and true topic codes of one batch of tickets."""
    n = len(health)
    z = cfg.ticket_offset + cfg.tone_health * health + cfg.tone_change * change
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
    subjects, bodies = [], []
    for t, k, tn, o, c, v in zip(topic, phrase, tone, opener, closer, comp, strict=True):
        subj, sent = _TOPIC_PHRASES[TEXT_TOPICS[t]][k]
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
    rng: np.random.Generator, cfg: TextConfig, score: np.ndarray, change: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A comment for some NPS answers (None for the rest) and its true tone (-1: none)."""
    n = len(score)
    z = (score - 7.5) / 1.5 + cfg.tone_change * change
    tone = _tone(rng, z, cfg)
    has = rng.random(n) < cfg.comment_share
    pick = _pick(rng, 3, n)
    texts = _oddities(rng, [_COMMENTS[t][k] for t, k in zip(tone, pick, strict=True)], cfg)
    comment = np.where(has, np.asarray(texts, dtype=object), None)
    return comment, np.where(has, tone, -1)


def tone_names(codes: np.ndarray) -> np.ndarray:
    """Tone codes as names (None where there is no text)."""
    names = np.asarray((*TEXT_TONES, None), dtype=object)
    return names[np.where(codes < 0, len(TEXT_TONES), codes)]
