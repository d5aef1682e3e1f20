"""Each lesson's plan: objectives, time, teacher notes, and the activities and
questions of the printable worksheet.

One list, rendered by both the lesson pages ("For teachers" under each title,
templates/teaching/_teacher_notes.html) and the worksheet (/learn/worksheet/),
so the two always say the same words: a change made here shows in both. The
texts are plain (Django escapes them); the curly quotes name buttons and
headings as the pages show them.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    text: str
    # Lines left to write the answer on the printed sheet: 2 for a number or a
    # word or two, 4 for a sentence or two of reasoning.
    lines: int = 3


@dataclass(frozen=True)
class LessonPlan:
    url_name: str
    minutes: int
    # Each finishes "Learners can ..." on the pages.
    objectives: tuple[str, ...]
    notes: str
    # What students do, in order, with the page open.
    activities: tuple[str, ...]
    questions: tuple[Question, ...]

    @property
    def anchor(self):
        """The lesson's id on the worksheet: "how-it-works" for "teaching:how_it_works"."""
        return self.url_name.split(":", 1)[1].replace("_", "-")


PLANS = (
    LessonPlan(
        url_name="teaching:how_it_works",
        minutes=25,
        objectives=(
            "say what the network is given: 784 numbers between 0 and 1, after cropping, "
            "scaling and centring;",
            "explain a filter as a weighted sum of a 3x3 patch, then batch norm and ReLU, "
            "and check one by hand in the arithmetic panel;",
            "describe how maps shrink (pooling) while the network goes from edges to parts "
            "of digits to ten probabilities.",
        ),
        notes="Start with Example 7 on the projector, then let everyone draw. Ask a learner "
              "to click a conv1 map and a position and read the numbers aloud: can the class "
              "add up the nine products? Then click a digit's bar for softmax. “Link to this "
              "drawing” gives a link that opens the same drawing on any screen and in lesson 2.",
        activities=(
            "Draw a digit in the box and watch steps 1 to 4 change while you draw.",
            "Draw the same digit small in a corner, then big in the middle. Compare step 4 "
            "for the two.",
            "In convolution layer 1, click a map, then a position in it. The arithmetic "
            "panel shows the nine products that make that one number.",
            "Click the bar of the digit you drew in step 12 to see how its probability is "
            "worked out.",
        ),
        questions=(
            Question("How many numbers does the network get from your drawing? What does "
                     "0 mean, and what does 1 mean?", 2),
            Question("Why is every drawing cropped, scaled and centred before the network "
                     "sees it? What did you see when you drew small in a corner?", 4),
            Question("Write down the nine products of the position you clicked and add them "
                     "up. Does your sum match the panel's?", 4),
            Question("Pooling turns a 28x28 map into a 14x14 one. What does it keep, and "
                     "what does it throw away?", 3),
            Question("The ten probabilities always add up to 100%. Which digit got the "
                     "second biggest bar for your drawing, and why might that be?", 3),
        ),
    ),
    LessonPlan(
        url_name="teaching:attention",
        minutes=20,
        objectives=(
            "explain occlusion as an experiment: hide a part, ask again, measure the change;",
            "read a heat map with its key, and tell “hiding changes nothing” from “nothing "
            "was measured” (the hatched cells);",
            "say what a gradient map cannot show, and test a “what if” by drawing it "
            "(a counterfactual).",
        ),
        notes="Before pressing “close it for me”, ask the class to guess how high the 9 bar "
              "will go. Let pairs find their own drawing whose answer flips with one stroke "
              "and share its link. Mistakes in lesson 4 open here.",
        activities=(
            "Draw a digit and look at the occlusion map: orange parts matter for the digit, "
            "blue parts look like another digit.",
            "Under “Explain which digit?” choose another digit and see how the maps change.",
            "Do the experiment “from 4 to 9”: start with an open 4 and add the stroke that "
            "closes its top.",
            "Find a drawing of your own whose answer changes with one stroke.",
        ),
        questions=(
            Question("In your own words: how does the occlusion map find out which parts of "
                     "a drawing matter?", 4),
            Question("What is the difference between a white cell and a hatched cell on the "
                     "occlusion map?", 3),
            Question("Before closing the 4: how high did you guess the 9 bar would go? How "
                     "high did it go?", 2),
            Question("Why can the gradient map not tell you what a whole new stroke will do?",
                     4),
            Question("Draw the digit you found whose answer flips with one stroke. What was "
                     "it before, and after?", 4),
        ),
    ),
    LessonPlan(
        url_name="teaching:model",
        minutes=15,
        objectives=(
            "read a model card: layers and parameters, training data, augmentation, test "
            "results;",
            "tell the training line from the test line, and why the gate's test set is no "
            "longer untouched;",
            "find the most common mistake in the confusion matrix.",
        ),
        notes="Ask why the training data holds more than MNIST (the canvas and the styles), "
              "and what “not worse on the gate's test set” protects against. Then take the "
              "biggest off-diagonal number of the matrix to lesson 4.",
        activities=(
            "Read “What it is made of”: the layers and how many numbers (parameters) "
            "the network learned.",
            "Read “How it was trained” and the list of changes made to the training digits.",
            "Compare the training line and the test line in “Learning, epoch by epoch”.",
            "Find the biggest number off the diagonal in “Which digits does it mix up?”.",
        ),
        questions=(
            Question("How many parameters does the model have? What is a parameter?", 3),
            Question("Name two changes made to the training digits, and say why each one "
                     "helps.", 4),
            Question("Why is the model tested on digits it never trained on?", 3),
            Question("Which digit does the model most often mistake for which other digit? "
                     "How many times?", 2),
        ),
    ),
    LessonPlan(
        url_name="teaching:data",
        minutes=15,
        objectives=(
            "describe what the network learned from and how varied handwriting is;",
            "find the model's mistakes and judge which ones a person would make too;",
            "connect mistakes to the data: which kinds of digit are rare or unusual.",
        ),
        notes="Give each pair a digit. They pick the mistake they find most forgivable and "
              "the least, then open it in lesson 2 to see what the network looked at.",
        activities=(
            "Pick your digit at the top of the page and look through its MNIST test digits.",
            "Look at the players' drawings of the same digit: how do they differ from MNIST's?",
            "In “Where the model goes wrong”, pick the mistake you find most forgivable and "
            "the one you find least forgivable.",
            "Open each of the two in lesson 2 to see what the network looked at.",
        ),
        questions=(
            Question("Your digit: describe two ways people write it differently.", 3),
            Question("The most forgivable mistake: what did the model answer, and would a "
                     "person make it too? Why?", 4),
            Question("The least forgivable mistake: what did the model look at in lesson 2?",
                     4),
            Question("What kind of drawings would you add to the training data to fix these "
                     "mistakes?", 3),
        ),
    ),
    LessonPlan(
        url_name="teaching:how_it_learned",
        minutes=20,
        objectives=(
            "say what a step, an epoch, a loss, augmentation and a test set are, with this "
            "network's own numbers;",
            "describe how a network goes from random guesses to right answers, from its "
            "snapshots: probabilities, loss, test accuracy and conv1's filters;",
            "explain how the site's model learns from players: a new version is compared "
            "with the one before on the same test digits, and switched on only if it is not "
            "worse.",
        ),
        notes="Ask the class to guess the network's answer before any training (step 0), "
              "then scrub with the arrow keys. When does their own drawing's answer become "
              "right: after 10 steps, 100, 1,000? Compare with a neighbour's drawing. End with "
              "“version N and N+1”: which of the two is more sure of your drawing, and does "
              "that agree with the before and after numbers?",
        activities=(
            "Draw a digit (or bring yours from another lesson) and move the slider to step 0: "
            "read the ten probabilities of the untrained network.",
            "Move the slider one snapshot at a time with the arrow keys. Write down the step "
            "at which the right digit first gets the biggest bar.",
            "Watch conv1's filters between step 0 and the last snapshot: which ones change "
            "the most?",
            "Compare the previous and the active version on your drawing, and read the before "
            "and after numbers of the last fine-tune.",
        ),
        questions=(
            Question("What is the difference between a step and an epoch? How many steps "
                     "made one epoch in the training run shown?", 3),
            Question("Before any training (step 0), what did the network answer for your "
                     "drawing, and how sure was it? Why?", 3),
            Question("At which snapshot did your digit first get the biggest bar? What was "
                     "the test accuracy then?", 2),
            Question("Why is the test set never used for training?", 3),
            Question("The previous and the active version: which one is more sure of your "
                     "drawing? Do the before and after numbers agree with what you saw?", 4),
        ),
    ),
)

BY_URL_NAME = {plan.url_name: plan for plan in PLANS}
TOTAL_MINUTES = sum(plan.minutes for plan in PLANS)
