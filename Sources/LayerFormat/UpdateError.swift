/// Why `DimensionUpdate` (and with it `layerfs update`) changes nothing. Every case is found
/// before the swap, so a refused update leaves the dimension as it was. Printed after
/// `layerfs: `, paths and the changes as the user wrote them in single quotes.
public enum UpdateError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A file's problem in the format's one form (`FILE: FIELD: message`): the new region
    /// over the size limit, a write that failed, new content that changed while read.
    case format(FormatError)
    /// The current generation cannot be read or is caught half way through a write. An
    /// update keeps every layer it does not change, so it cannot build on that; `pack`
    /// rebuilds a dimension from scratch.
    case unreadableBase(FormatError)
    /// Another writer holds the dimension's writer lock, or the lock cannot be used.
    case locked(WriterLockError)
    /// A file given as a layer's new content cannot be used: `problem` says why.
    case input(String, problem: String)
    /// Two changes of one call change the same layer (`--put 3=a --delete 3`, two
    /// `--keywords 3=`), so no order of applying them is the obvious one.
    case conflict(id: UInt32, first: String, second: String)
    /// A change names a layer that the current generation does not have.
    case absent(id: UInt32, change: String, dimension: String, layers: LayerRange?)
    /// A change's value is refused: id 0, keywords over the limit, a frequency that is not
    /// finite.
    case invalid(change: String, problem: String)
    /// `--put-next` past layer id 4294967295.
    case idsExhausted(change: String, dimension: String)
    /// No change and no new name: nothing to write.
    case nothingToDo

    /// The ids a dimension has, for "it has no layer 9" messages.
    public struct LayerRange: Equatable, Sendable {
        public var count: Int
        public var first: UInt32
        public var last: UInt32
    }

    public var description: String {
        switch self {
        case .format(let error):
            return error.description
        case .unreadableBase(let error):
            return "\(error.description); an update builds on the current generation, so this one must be rebuilt with 'layerfs pack' first"
        case .locked(let error):
            return error.description
        case .input(let path, let problem):
            return "input \(PackError.quote(path)) \(problem)"
        case .conflict(let id, let first, let second):
            return "\(UpdateError.quote(first)) and \(UpdateError.quote(second)) both change layer \(id): give one change of a layer's bytes, keywords or frequency per call"
        case .absent(let id, let change, let dimension, let layers):
            let has: String
            if let layers {
                has = layers.count == 1 ? "its one layer is \(layers.first)" : "it has \(layers.count) layers, ids \(layers.first) to \(layers.last)"
            } else {
                has = "it has no layers"
            }
            return "\(UpdateError.quote(change)): \(PackError.quote(dimension)) has no layer \(id) (\(has))"
        case .invalid(let change, let problem):
            return "\(UpdateError.quote(change)): \(problem)"
        case .idsExhausted(let change, let dimension):
            return "\(UpdateError.quote(change)): \(PackError.quote(dimension)) already has layer 4294967295, the last id, so there is no next one"
        case .nothingToDo:
            return "no change given: nothing to write"
        }
    }

    /// A change as the user wrote it, quoted, and cut short when long (keywords may run to
    /// 64 KiB): the message has to fit on a screen.
    static func quote(_ change: String) -> String {
        let limit = 80
        guard change.count > limit else { return PackError.quote(change) }
        return PackError.quote(String(change.prefix(limit)) + "...")
    }
}
