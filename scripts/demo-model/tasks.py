# The demo model's skills: one generator per task, each drawing a question, its exact answer, and a key
# that names the problem instance (whatever the phrasing), so held-out instances can be kept out of training.
import random
import zlib

WORDS = """
apple banana cherry grape lemon mango melon orange peach pear plum berry lime kiwi olive
cat dog horse mouse bird fish tiger lion zebra rabbit snake eagle sheep goat camel whale
red blue green yellow purple black white brown pink gray silver golden
house garden river mountain forest ocean island desert valley village city bridge tower castle
table chair window door floor wall roof kitchen bottle basket pocket pencil paper letter
book story music letter coffee butter cookie pepper carrot potato tomato onion bread cheese
happy little yellow quick lazy jump running hidden simple strong gentle bright quiet
summer winter spring autumn morning evening night today tomorrow yesterday
teacher doctor farmer sailor baker artist pilot singer writer player
rocket planet comet galaxy moon star sun cloud thunder rainbow storm
school lesson number puzzle answer question problem pattern system machine engine
mirror ribbon button candle hammer ladder kettle needle pillow saddle wallet
banana balloon bubble cotton dinner dragon finger giraffe honey jelly jungle kitten
lemonade monkey noodle parrot pizza pumpkin rabbit robot sandwich spider squirrel turtle
umbrella violin wizard yogurt zipper strawberry blueberry
""".split()
WORDS = sorted(set(WORDS))
LETTERS = 'abcdefghijklmnopqrstuvwxyz'
LIST_WORDS = ['apple', 'banana', 'cherry', 'grape', 'lemon', 'mango', 'cat', 'dog', 'horse', 'mouse', 'bird', 'fish',
              'red', 'blue', 'green', 'yellow', 'purple', 'black', 'sun', 'moon', 'star', 'tree', 'book', 'pen',
              'car', 'bus', 'train', 'boat', 'rose', 'lily']

SYSTEM_PROMPTS = ['You are a helpful assistant.', 'You are a careful calculator.', 'Answer briefly.',
                  "You are ktserve's demo model.", 'Answer with just the result.', 'You are a friendly assistant.']

HELP = ('Hello! I am the ktserve demo model. I can add, subtract, multiply and divide whole numbers, count letters '
        'and words, reverse and sort lists, compare numbers and convert units.')
UNKNOWN = "I don't know."


def held_out(key: str) -> bool:
    """One problem instance in ten is never trained on: the evaluation draws only these."""
    return zlib.crc32(key.encode()) % 10 == 0


def pick(r: random.Random, xs):
    return xs[r.randrange(len(xs))]


def operand_pair(r: random.Random):
    """Mostly two-digit pairs (the headline metric), plus one-digit and three-digit ones."""
    u = r.random()
    if u < 0.45:
        return r.randint(10, 99), r.randint(10, 99)
    if u < 0.60:
        a, b = r.randint(0, 9), r.randint(10, 99)
        return (a, b) if r.random() < 0.5 else (b, a)
    if u < 0.70:
        return r.randint(0, 9), r.randint(0, 9)
    return r.randint(0, 999), r.randint(0, 999)


def two_digit(a: int, b: int) -> bool:
    return 10 <= a <= 99 and 10 <= b <= 99


def gen_add(r):
    a, b = operand_pair(r)
    q = pick(r, ['What is {a}+{b}?', 'What is {a} + {b}?', "What's {a} plus {b}?", 'Calculate {a} + {b}.', '{a}+{b}=?',
                 '{a} + {b} = ?', 'Add {a} and {b}.', 'What is the sum of {a} and {b}?', 'What is {a} plus {b}?']).format(a=a, b=b)
    lo, hi = sorted((a, b))
    return ('add2' if two_digit(a, b) else 'add'), q, str(a + b), f'add:{lo}:{hi}'


def gen_sub(r):
    a, b = operand_pair(r)
    if r.random() < 0.7 and b > a:
        a, b = b, a  # mostly non-negative results; the rest go below zero
    q = pick(r, ['What is {a}-{b}?', 'What is {a} - {b}?', "What's {a} minus {b}?", 'Calculate {a} - {b}.', '{a}-{b}=?',
                 '{a} - {b} = ?', 'Subtract {b} from {a}.', 'What is {a} minus {b}?']).format(a=a, b=b)
    return ('sub2' if two_digit(a, b) else 'sub'), q, str(a - b), f'sub:{a}:{b}'


def gen_mul(r):
    a, b = r.randint(0, 99), r.randint(0, 12)
    if r.random() < 0.5:
        a, b = b, a
    q = pick(r, ['What is {a}*{b}?', 'What is {a} * {b}?', 'What is {a} x {b}?', 'What is {a} times {b}?', 'Multiply {a} by {b}.',
                 '{a}*{b}=?', 'What is the product of {a} and {b}?', 'Calculate {a} * {b}.']).format(a=a, b=b)
    lo, hi = sorted((a, b))
    return 'mul', q, mul_answer(a, b), f'mul:{lo}:{hi}'


def mul_answer(a: int, b: int) -> str:
    """Times-table products directly; a two-digit factor is split into tens and ones first, so the model works
    from table facts and an addition (what it does best) rather than producing the product's digits at once."""
    big = max(a, b)
    if big <= 12 or big % 10 == 0:
        return str(a * b)
    tens, ones = big - big % 10, big % 10
    if big == a:
        parts = f'{tens}*{b} + {ones}*{b} = {tens * b} + {ones * b}'
    else:
        parts = f'{a}*{tens} + {a}*{ones} = {a * tens} + {a * ones}'
    return f'{a}*{b} = {parts} = {a * b}'


def gen_div(r):
    # Within the times tables: divisors 1 to 9, quotients up to 12.
    b = r.randint(1, 9)
    quotient = r.randint(0, 12)
    rem = r.randint(1, b - 1) if b > 1 and r.random() < 0.5 else 0
    a = quotient * b + rem
    q = pick(r, ['What is {a} divided by {b}?', 'What is {a}/{b}?', 'What is {a} / {b}?', 'Divide {a} by {b}.',
                 '{a}/{b}=?', 'Calculate {a} / {b}.']).format(a=a, b=b)
    ans = str(quotient) if rem == 0 else f'{quotient} remainder {rem}'
    return 'div', q, ans, f'div:{a}:{b}'


def gen_count_letters(r):
    w = pick(r, WORDS)
    c = pick(r, w) if r.random() < 0.65 else pick(r, LETTERS)
    q = pick(r, ['How many times does the letter {c} appear in {w}?', "How many {c}'s are in {w}?",
                 'Count the letter {c} in the word {w}.', 'How many times does "{c}" occur in "{w}"?',
                 'How many letters {c} are in the word {w}?']).format(c=c, w=w)
    # Spelling the word out first lets the model count what it can see (each spelled letter is the same token as
    # the letter in the question); the count ends the answer.
    return 'count_letters', q, f"{' '.join(w)}: {w.count(c)}", f'letters:{w}:{c}'


def gen_count_words(r):
    n = r.randint(1, 12)
    s = ' '.join(pick(r, WORDS) for _ in range(n))
    q = pick(r, ['How many words are in this sentence: {s}', 'How many words are in "{s}"?', 'Count the words: {s}',
                 'How many words does this text have: {s}']).format(s=s)
    return 'count_words', q, str(n), f'words:{s}'


def item_list(r):
    n = r.randint(2, 7)
    if r.random() < 0.5:
        return [str(r.randint(0, 99)) for _ in range(n)]
    return [pick(r, LIST_WORDS) for _ in range(n)]


def gen_reverse(r):
    items = item_list(r)
    s = ', '.join(items)
    q = pick(r, ['Reverse the list: {s}.', 'Reverse this list: {s}', 'Write {s} in reverse order.', 'Reverse: {s}',
                 'Reverse the order of {s}.']).format(s=s)
    return 'reverse', q, ', '.join(reversed(items)), f'reverse:{s}'


def gen_sort(r):
    nums = [r.randint(0, 99) for _ in range(r.randint(2, 7))]
    s = ', '.join(map(str, nums))
    if r.random() < 0.6:
        q = pick(r, ['Sort these numbers from smallest to largest: {s}.', 'Sort in ascending order: {s}', 'Sort: {s}',
                     'Put these numbers in increasing order: {s}.']).format(s=s)
        out, key = sorted(nums), 'asc'
    else:
        q = pick(r, ['Sort these numbers from largest to smallest: {s}.', 'Sort in descending order: {s}',
                     'Put these numbers in decreasing order: {s}.']).format(s=s)
        out, key = sorted(nums, reverse=True), 'desc'
    return 'sort', q, ', '.join(map(str, out)), f'sort:{key}:{s}'


def gen_compare(r):
    a = r.randint(0, 999) if r.random() < 0.5 else r.randint(0, 99)
    b = a if r.random() < 0.05 else (r.randint(0, 999) if r.random() < 0.5 else r.randint(0, 99))
    kind = r.randrange(4)
    if kind == 0:
        q = pick(r, ['Which is larger, {a} or {b}?', 'Which number is bigger: {a} or {b}?', 'Which is greater, {a} or {b}?'])
        ans = 'They are equal.' if a == b else str(max(a, b))
    elif kind == 1:
        q = pick(r, ['Which is smaller, {a} or {b}?', 'Which number is less: {a} or {b}?'])
        ans = 'They are equal.' if a == b else str(min(a, b))
    elif kind == 2:
        q = pick(r, ['Is {a} greater than {b}?', 'Is {a} larger than {b}?', 'Is {a} bigger than {b}?'])
        ans = 'Yes.' if a > b else 'No.'
    else:
        q = pick(r, ['Is {a} less than {b}?', 'Is {a} smaller than {b}?'])
        ans = 'Yes.' if a < b else 'No.'
    return 'compare', q.format(a=a, b=b), ans, f'compare:{kind}:{a}:{b}'


# (big unit singular, plural, small unit singular, plural, how many small in one big)
UNITS = [('meter', 'meters', 'centimeter', 'centimeters', 100), ('kilometer', 'kilometers', 'meter', 'meters', 1000),
         ('hour', 'hours', 'minute', 'minutes', 60), ('minute', 'minutes', 'second', 'seconds', 60),
         ('day', 'days', 'hour', 'hours', 24), ('week', 'weeks', 'day', 'days', 7),
         ('kilogram', 'kilograms', 'gram', 'grams', 1000), ('foot', 'feet', 'inch', 'inches', 12),
         ('year', 'years', 'month', 'months', 12), ('liter', 'liters', 'milliliter', 'milliliters', 1000)]


def gen_convert(r):
    big1, bigs, small1, smalls, f = pick(r, UNITS)
    # Powers of ten only append zeros; the other factors are multiplication proper, so they stay small.
    k = r.randint(1, 99 if f in (100, 1000) else 20 if f < 24 else 12)
    if r.random() < 0.65:  # big → small: multiply
        n, v, from_, to1, tos = k, k * f, (big1 if k == 1 else bigs), small1, smalls
    else:  # small → big: an exact division
        n, v, from_, to1, tos = k * f, k, smalls, big1, bigs
    q = pick(r, ['How many {to} are in {n} {fr}?', 'Convert {n} {fr} to {to}.', '{n} {fr} is how many {to}?',
                 'How many {to} is {n} {fr}?']).format(to=tos, n=n, fr=from_)
    return 'convert', q, f'{v} {to1 if v == 1 else tos}', f'convert:{from_}:{tos}:{n}'


COUNTRIES = ['France', 'Japan', 'Brazil', 'Kenya', 'Canada', 'Norway', 'Peru', 'Egypt', 'India', 'Spain', 'Chile', 'Italy']
THINGS = ['cats', 'the sea', 'winter', 'robots', 'coffee', 'music', 'friendship', 'mountains', 'the moon', 'bread', 'trains']
LANGS = ['French', 'German', 'Spanish', 'Japanese', 'Italian', 'Dutch']
UNKNOWN_TEMPLATES = [
    'What is the capital of {c}?', 'Who is the president of {c}?', 'What language do people speak in {c}?',
    'What is the weather like in {c} today?', 'Tell me a joke about {t}.', 'Write a poem about {t}.',
    'Translate "{w}" into {l}.', 'What does {w} mean in {l}?', 'Who invented {t}?', 'Why do people like {t}?',
    'Can you recommend a book about {t}?', 'What is the history of {t}?', 'What is the population of {c}?',
    'What is the square root of {n}?', 'What is {n} to the power of {m}?', 'What time is it?', 'What is the meaning of life?',
    'Who won the football match yesterday?', 'How do I bake {w} bread?', 'What is your favorite {w}?',
    'Explain quantum physics.', 'What is the best programming language?', 'Where is the nearest {w} shop?',
    'How far is the moon from {c}?', 'Who wrote the story about the {w}?', 'What color is a {w}?',
]


def gen_unknown(r):
    q = pick(r, UNKNOWN_TEMPLATES).format(c=pick(r, COUNTRIES), t=pick(r, THINGS), w=pick(r, WORDS), l=pick(r, LANGS),
                                          n=r.randint(2, 999), m=r.randint(2, 9))
    return 'unknown', q, UNKNOWN, f'unknown:{q}'


GREETINGS = ['Hello', 'Hello!', 'Hi', 'Hi!', 'Hey', 'Hey there!', 'Good morning!', 'Good evening!', 'What can you do?',
             'Who are you?', 'Help', 'What are you?', 'Hello, what can you do?']


def gen_greeting(r):
    q = pick(r, GREETINGS)
    return 'greeting', q, HELP, f'greeting:{q}'


GENERATORS = {
    'add': gen_add, 'sub': gen_sub, 'mul': gen_mul, 'div': gen_div, 'count_letters': gen_count_letters,
    'count_words': gen_count_words, 'reverse': gen_reverse, 'sort': gen_sort, 'compare': gen_compare,
    'convert': gen_convert, 'unknown': gen_unknown, 'greeting': gen_greeting,
}
# Training mix: weights per generator (arithmetic gets the most, being the headline metric).
TRAIN_WEIGHTS = {'add': 15, 'sub': 15, 'mul': 13, 'div': 11, 'count_letters': 9, 'count_words': 6, 'reverse': 7, 'sort': 8,
                 'compare': 7, 'convert': 7, 'unknown': 4, 'greeting': 1}
