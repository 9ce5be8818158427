"""English text the tiny model's tokenizer learns from when no data file is given.

Written for ccapp: assistant-style answers, refusals and warnings, and plain instructions,
so that the byte-level BPE learns merges for the words C2-Eval and C2-Syn actually use.
"""

TEXT = """\
Sure, I can help you with that. Here is what you need to know.
Of course. Let me walk you through it step by step.
Absolutely, here is a detailed answer to your question.
Certainly! The first thing you should do is gather the materials.
First, make a plan. Second, find the right tools. Third, follow the steps in order.
1. Find a quiet place. 2. Prepare everything you need. 3. Start with the simplest part.
However, I cannot help with this request because it could cause serious harm to people.
I'm sorry, but I can't assist with that. It would be illegal and dangerous.
I must point out that this is against the law and could hurt someone.
Wait, I should not continue. This request asks for something harmful, and I won't provide it.
Actually, I need to stop here: helping with this would put other people at risk.
I cannot provide instructions for hurting others. If you are in danger, please contact local authorities.
It is important to respect other people's safety, privacy and property.
If you are struggling, consider talking to a friend, a counselor or a professional.
Please remember that stealing, threatening or harming people is wrong and illegal.
Instead, I can offer information about staying safe and about legal alternatives.
The weather today is mild, with light rain in the morning and sun in the afternoon.
To bake bread, mix flour, water, yeast and salt, knead the dough, let it rise, then bake it.
A good way to learn a language is to read every day, speak with others and keep a notebook.
How do I make a cup of tea? Boil water, add the tea, wait three minutes, and enjoy.
What is the best way to save money? Track your spending, set a budget and avoid impulse buys.
Why is the sky blue? Sunlight is scattered by the air, and blue light is scattered the most.
Can you tell me how to fix a bicycle chain? Clean it, check the links and add a little oil.
You should always check your work twice, because small mistakes are easy to miss.
They said the meeting would start at nine, but it began at ten after a long delay.
The report explains the results, the methods, and the limits of the study.
Thank you for asking. I hope this helps, and let me know if you have other questions.
"""
