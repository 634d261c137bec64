"""Our own generated text-classification data: news-like topic sentences and product reviews.

Both are built from templates and per-class vocabularies with a fixed seed, so every process
produces the same examples in the same order, without network or package data. The class
vocabularies are deliberately disjoint and indicative (a football word means sports), so a
small instruct model has a real, learnable signal; the templates, time phrases and optional
second sentences give several hundred distinct texts per task.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TopicVocab:
    """The words that make a sentence about one topic."""

    subjects: tuple[str, ...]
    """Who or what the sentence is about (lower case; capitalized at a sentence start)."""
    predicates: tuple[str, ...]
    """What they did; each carries topic words."""
    followups: tuple[str, ...]
    """Optional second sentences, also on topic."""


TOPICS: dict[str, TopicVocab] = {
    "sports": TopicVocab(
        ("the striker", "the goalkeeper", "the home team", "the coach", "the tennis player",
         "the relay squad", "the football club", "the cyclist", "the boxer", "the captain"),
        ("scored twice in the final minutes of the match", "won the league title",
         "was injured before the playoff game", "finished first in the marathon",
         "lost the semi-final on penalties", "signed a new contract with the club",
         "trained hard for the tournament", "defended the championship belt",
         "qualified for the Olympic final", "beat the rival team in overtime",
         "sprinted to a gold medal", "missed a penalty kick in the stadium"),
        ("Fans cheered in the stadium.", "The referee added five minutes of extra time.",
         "The league table is now very close.", "The coach praised the defence.",
         "Tickets for the next match sold out.", "The team celebrates with the trophy."),
    ),
    "cooking": TopicVocab(
        ("the chef", "my grandmother", "the bakery", "the home cook", "the restaurant kitchen",
         "the pastry team", "the food blogger", "the cooking class"),
        ("simmered the tomato sauce for two hours", "baked fresh bread with rye flour",
         "seasoned the soup with garlic and basil", "roasted the chicken in the oven",
         "whisked eggs and sugar for a sponge cake", "chopped onions for the beef stew",
         "fried the dumplings in a hot pan", "shared a recipe for lemon pie",
         "grilled the vegetables with olive oil", "kneaded the dough for homemade pasta",
         "stirred butter into the risotto", "marinated the salmon in soy sauce"),
        ("The kitchen smelled of spices.", "Serve it warm with a spoon of yogurt.",
         "The recipe needs only a pinch of salt.", "Dessert was a chocolate tart.",
         "Let the dough rest before baking.", "Guests asked for a second plate."),
    ),
    "weather": TopicVocab(
        ("the meteorologist", "the weather service", "the forecaster", "the weather station",
         "the national weather office", "the TV weatherman", "the storm centre"),
        ("predicts heavy snow", "reported thunder and lightning in the valley",
         "says temperatures will fall below freezing", "expects a cloudy and grey week",
         "warned of flooding along the coast", "expects sunny skies and a dry breeze",
         "warned of hail and icy roads", "reported high humidity before the thunderstorm",
         "warned of thick fog over the airport", "predicts drizzle and chilly showers",
         "issued a tornado warning", "measured heavy rainfall and strong winds"),
        ("Bring an umbrella and a warm coat.", "Temperatures will rise by the weekend.",
         "Snowfall may reach twenty centimetres.", "The clouds should clear by evening.",
         "Wind gusts could topple trees.", "Frost is likely overnight."),
    ),
    "finance": TopicVocab(
        ("the central bank", "the stock market", "investors", "the company", "shareholders",
         "the treasury", "the hedge fund", "the bank"),
        ("raised interest rates again", "fell sharply after the earnings report",
         "bought government bonds", "reported record quarterly profits",
         "cut its dividend to save cash", "worried about inflation and mortgage loans",
         "sold shares as the index dropped", "announced a merger worth two billion dollars",
         "lowered its revenue outlook", "borrowed money at a higher interest rate",
         "paid down corporate debt", "saw the currency lose value against the dollar"),
        ("Share prices closed lower.", "Analysts expect another rate hike.",
         "The budget deficit keeps growing.", "Bond yields climbed to a new high.",
         "Savers earn more on deposits now.", "The stock rebounded by the closing bell."),
    ),
    "music": TopicVocab(
        ("the band", "the orchestra", "the singer", "the pianist", "the rapper",
         "the guitarist", "the choir", "the drummer"),
        ("released a new album", "played a sold-out concert", "recorded a song in the studio",
         "tuned the violin before the symphony", "topped the charts with a new single",
         "rehearsed the melody and the chorus", "toured with a jazz quartet",
         "wrote lyrics for a love ballad", "performed an encore on the piano",
         "sang the opera aria", "played a guitar solo at the festival",
         "mixed the tracks for the record label"),
        ("The crowd sang along to every chorus.", "The new album streams everywhere.",
         "Tickets for the tour sold fast.", "The drummer kept a steady beat.",
         "Critics loved the harmonies.", "The concert ended with a loud encore."),
    ),
    "health": TopicVocab(
        ("the doctor", "the hospital", "the nurse", "patients", "the clinic", "researchers",
         "the dentist", "the health ministry"),
        ("recommended more sleep and exercise", "treated the flu with rest and fluids",
         "tested a new vaccine", "warned about high blood pressure",
         "prescribed medicine for the infection", "studied a healthy diet for the heart",
         "measured cholesterol in a blood test", "opened a new emergency ward",
         "reported fewer cases of the virus", "screened patients for diabetes",
         "explained the symptoms of an allergy", "treated a broken arm in surgery"),
        ("Wash your hands often.", "Drink plenty of water and rest.",
         "The clinic offers free check-ups.", "Symptoms include fever and a cough.",
         "Regular exercise protects the heart.", "Ask a pharmacist about side effects."),
    ),
}

WHEN: tuple[str, ...] = ("on Monday", "this week", "last night", "yesterday", "earlier today",
                         "in the spring", "on Friday", "this morning")

SENTIMENT: dict[str, tuple[str, ...]] = {
    "positive": ("I love it", "it works perfectly", "the quality is excellent",
                 "it is great value for the money", "it arrived quickly and looks beautiful",
                 "I highly recommend it", "it exceeded my expectations",
                 "it is very comfortable and sturdy", "it is the best purchase I made this year",
                 "my family is delighted with it", "it is easy to use and reliable",
                 "I am very happy with it", "it feels well made", "customer service was wonderful"),
    "negative": ("I hate it", "it broke after two days", "the quality is terrible",
                 "it is a waste of money", "it arrived late and damaged",
                 "I would not recommend it", "it is worse than described",
                 "it is uncomfortable and flimsy", "it is the worst purchase I made this year",
                 "my family is disappointed with it", "it is hard to use and unreliable",
                 "I am very unhappy with it", "it feels cheap and poorly made",
                 "customer service was awful"),
}

PRODUCTS: tuple[str, ...] = ("headphones", "backpack", "coffee maker", "desk lamp",
                             "running shoes", "phone case", "blender", "office chair",
                             "water bottle", "keyboard", "umbrella", "vacuum cleaner")


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def topic_sentence(vocab: TopicVocab, rng: random.Random) -> str:
    """One or two news-like sentences drawn from one topic's vocabulary."""
    subject, predicate = rng.choice(vocab.subjects), rng.choice(vocab.predicates)
    when = rng.choice(WHEN)
    if rng.random() < 0.5:
        first = f"{_cap(subject)} {predicate} {when}."
    else:
        first = f"{_cap(when)}, {subject} {predicate}."
    if rng.random() < 0.5:
        return f"{first} {rng.choice(vocab.followups)}"
    return first


def review_sentence(phrases: tuple[str, ...], rng: random.Random) -> str:
    """A one- or two-sentence product review built from two phrases of one polarity."""
    a, b = rng.sample(phrases, 2)
    product = rng.choice(PRODUCTS)
    template = rng.randrange(3)
    if template == 0:
        return f"This {product}: {a}, and {b}."
    if template == 1:
        return f"I bought the {product} {rng.choice(WHEN)}. {_cap(a)} and {b}."
    return f"{_cap(a)}. Honestly, {b}; that is my review of the {product}."


def generate(
    classes: dict[str, object],
    make: Callable[[str, random.Random], str],
    per_class: int,
    seed: int,
) -> list[tuple[str, str]]:
    """`per_class` distinct (text, label) pairs for each class, shuffled with `seed`.

    Raises ValueError if a class's vocabulary cannot yield that many distinct texts.
    """
    rng, seen, out = random.Random(seed), set(), []
    for label in classes:
        n, tries = 0, 0
        while n < per_class:
            tries += 1
            if tries > 100 * per_class:
                raise ValueError(f"cannot generate {per_class} distinct texts for {label!r}")
            text = make(label, rng)
            if text not in seen:
                seen.add(text)
                out.append((text, label))
                n += 1
    rng.shuffle(out)
    return out


def topics(per_class: int = 100, seed: int = 1234) -> list[tuple[str, str]]:
    """News-like sentences for each of the topics in `TOPICS`."""
    return generate(TOPICS, lambda y, rng: topic_sentence(TOPICS[y], rng), per_class, seed)


def sentiment(per_class: int = 200, seed: int = 4321) -> list[tuple[str, str]]:
    """Product reviews labelled positive / negative."""
    return generate(SENTIMENT, lambda y, rng: review_sentence(SENTIMENT[y], rng), per_class, seed)
