/// The words of the sample volume. Plain data, so that the bytes (and so the checksums) of
/// the sample never depend on anything but this file.
enum SampleText {
    struct Topic {
        var title: String
        var keywords: [String]
        var line: String
    }

    static func layer(dimension: String, id: UInt32, layer: UInt32, topic: Topic, frequency: Double) -> String {
        """
        # \(dimension) (D\(id < 10 ? "0" : "")\(id)), layer \(layer): \(topic.title)
        frequency: \(Frequency.format(frequency))
        keywords: \(topic.keywords.joined(separator: ", "))

        \(topic.line)
        This layer is part of the sample volume written by `layerfs init --sample`.

        """
    }

    static func t(_ title: String, _ keywords: [String], _ line: String) -> Topic { Topic(title: title, keywords: keywords, line: line) }

    static let topics: [[Topic]] = [
        [t("core feelings", ["emotion", "feeling", "affect"], "Joy, sadness, fear and anger colour every perception."),
         t("empathy", ["empathy", "compassion"], "Feeling with another is different from feeling for them."),
         t("calm", ["calm", "regulation"], "A steady breath lowers the volume of a strong feeling.")],
        [t("reasoning", ["cognition", "logic", "reasoning"], "Claims are weighed against evidence before they are believed."),
         t("memory", ["memory", "recall"], "What is recalled is rebuilt each time, not replayed."),
         t("attention", ["attention", "focus"], "Attention is the scarce resource every thought competes for.")],
        [t("goals", ["intention", "goal", "purpose"], "A goal turns a wish into a plan with a first step."),
         t("commitment", ["commitment", "promise"], "An intention kept builds trust; one broken costs it."),
         t("choice", ["choice", "decision"], "Every decision is also a choice of what not to do.")],
        [t("connection", ["social", "connection", "relationship"], "People think better together than alone, and worse in crowds."),
         t("dialogue", ["dialogue", "listening"], "Listening well is most of a good conversation."),
         t("community", ["community", "belonging"], "Belonging grows from small, repeated kindnesses.")],
        [t("now", ["temporal", "present", "time"], "The present is the only place anything happens."),
         t("history", ["past", "history"], "The past explains the present without excusing it."),
         t("plans", ["future", "planning"], "A plan is a guess about the future that is easy to change.")],
        [t("meaning", ["philosophy", "meaning", "existence"], "Questions about meaning outlive every answer to them."),
         t("knowledge", ["epistemology", "truth"], "Knowing that you might be wrong is the start of knowing."),
         t("mind", ["mind", "consciousness"], "What it is like to be something is hard to say from outside.")],
        [t("systems", ["technical", "systems", "engineering"], "A system is only as reliable as its least tested path."),
         t("data", ["data", "format"], "A format with a written specification outlives its first program."),
         t("tools", ["tools", "automation"], "Good tools make the right thing the easy thing.")],
        [t("ideas", ["creative", "imagination", "ideas"], "New ideas are mostly old ideas, combined in a new way."),
         t("play", ["play", "exploration"], "Play is how minds try things without paying for mistakes."),
         t("craft", ["craft", "making"], "Craft is care, repeated until it becomes skill.")],
        [t("values", ["ethics", "values", "morality"], "What we do when nobody is watching shows what we value."),
         t("fairness", ["fairness", "justice"], "Fair rules are ones you would accept before knowing your place."),
         t("harm", ["harm", "care"], "Avoiding harm comes before doing good.")],
        [t("reflection", ["meta", "reflection", "self-awareness"], "Thinking about thinking is how habits of thought change."),
         t("learning", ["learning", "adaptation"], "To learn is to be changed by what you meet."),
         t("models", ["models", "abstraction"], "Every model leaves something out; the question is what.")],
        [t("nature", ["ecological", "nature", "environment"], "Every living thing is someone else's environment."),
         t("cycles", ["cycles", "sustainability"], "What is taken from a cycle must be given back to it."),
         t("balance", ["ecosystem", "resilience"], "Diverse systems bend where simple ones break.")],
        [t("gratitude", ["positivity", "gratitude", "optimism"], "Noticing what went well is a skill that grows with use."),
         t("hope", ["hope", "encouragement"], "Hope is a plan that has not given up."),
         t("humour", ["humour", "lightness"], "A shared laugh shrinks a large problem.")],
        [t("equilibrium", ["balance", "equilibrium", "harmony"], "Balance is constant small correction, not standing still."),
         t("rest", ["rest", "recovery"], "Rest is part of the work, not a break from it."),
         t("trade-offs", ["trade-off", "moderation"], "Every strength overused becomes a weakness.")],
        [t("safety", ["security", "safety", "protection"], "Security is a property of the whole, never of one part."),
         t("trust", ["trust", "verification"], "Trust, but check the checksum."),
         t("boundaries", ["boundaries", "privacy"], "Clear boundaries make open doors safe.")],
    ]
}
